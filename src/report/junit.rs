//! JUnit XML for CI systems: a testsuite per phase, a testcase per threshold, a `<failure>`
//! with measured vs limit when it failed. Every name goes through [`esc`].

use std::fmt::Write as _;

use super::escape::html as esc;
use super::model::{Report, Status};

pub fn render(r: &Report) -> String {
    let mut out = String::with_capacity(4096);
    let tests = r.sla.len();
    let failures = r.sla.iter().filter(|t| t.status == Status::Fail).count();
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"stampede: {}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">\n",
        esc(&r.plan)
    );
    for p in &r.summary.phases {
        let rows: Vec<_> = r.sla.iter().filter(|t| t.phase == p.name).collect();
        let f = rows.iter().filter(|t| t.status == Status::Fail).count();
        let _ = write!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" errors=\"0\" skipped=\"0\" time=\"{:.3}\" timestamp=\"{}\">",
            esc(&p.name),
            rows.len(),
            p.duration_s,
            esc(&r.date)
        );
        out.push('\n');
        let _ = write!(
            out,
            "    <properties><property name=\"description\" value=\"{}\"/><property name=\"requests\" value=\"{}\"/><property name=\"rps\" value=\"{:.3}\"/><property name=\"error_rate\" value=\"{}\"/></properties>",
            esc(&p.description),
            p.requests,
            p.rps,
            p.error_rate
        );
        out.push('\n');
        for t in rows {
            let name = match &t.step {
                Some(s) if !t.expr.contains(s.as_str()) => format!("{} [{}]", t.expr, s),
                _ => t.expr.clone(),
            };
            let _ = write!(
                out,
                "    <testcase classname=\"stampede.{}.{}\" name=\"{}\" time=\"0\"",
                esc(&r.plan),
                esc(&p.name),
                esc(&name)
            );
            if t.status == Status::Fail {
                let msg = format!("measured {}, limit {}", t.measured, t.target);
                let _ = write!(
                    out,
                    ">\n      <failure message=\"{m}\" type=\"threshold\">{}: {m}</failure>\n    </testcase>\n",
                    esc(&name),
                    m = esc(&msg)
                );
            } else {
                let _ = write!(
                    out,
                    ">\n      <system-out>measured {}, limit {} ({})</system-out>\n    </testcase>\n",
                    esc(&t.measured),
                    esc(&t.target),
                    esc(t.status.word())
                );
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
