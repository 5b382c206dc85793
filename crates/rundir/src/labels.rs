//! Statuses stored on disk by name (verdicts, finding priorities, report ratings): one table
//! per enum gives both the serde name and `as_str`, so what a file holds and what a renderer
//! prints can never drift apart, and no code matches such a label as a string.

/// Declares an enum from one table of `Variant = "name"`: serde writes and reads each variant
/// under its name, and `as_str` and `Display` give the same name. The variants are ordered as
/// listed (`Ord`), so a table written most urgent first sorts most urgent first.
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
        )]
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every variant, in the table's order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The name it is stored under.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub use named_enum;

#[cfg(test)]
mod tests {
    use crate::summary::{Priority, Verdict};

    /// serde's name is `as_str`, both ways, for every variant of every named enum.
    pub fn round_trips<T>(all: &[T], name: fn(&T) -> &'static str)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        for v in all {
            let json = serde_json::to_value(v).unwrap();
            assert_eq!(json, serde_json::Value::String(name(v).into()), "{v:?}");
            assert_eq!(&serde_json::from_value::<T>(json).unwrap(), v);
        }
    }

    #[test]
    fn the_stored_name_is_the_printed_name() {
        round_trips(Verdict::ALL, |v| v.as_str());
        round_trips(Priority::ALL, |v| v.as_str());
        assert_eq!(Verdict::PassedWithConditions.to_string(), "passed_with_conditions");
        assert!(Priority::Critical < Priority::High && Priority::High < Priority::Medium);
    }
}
