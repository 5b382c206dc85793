//! `ws:` steps: the upgrade URL (a path joined to `target`, http→ws and https→wss, or a ws://
//! or wss:// URL), headers, subprotocols, reconnects, and the session of actions run on the
//! step's one connection. Every rule a session must keep is checked here, with where.

use std::collections::BTreeMap;

use serde_json::Value;

use super::step::{captures, first_set, http_only_keys, subst_value, without_templates};
use super::*;
use crate::compile::{compile_json, Names};

#[allow(clippy::too_many_arguments)]
pub(super) fn resolve_ws_step(
    rs: &Resolver,
    st: &S<RawStep>,
    url: &S<String>,
    names: &Names,
    target: Option<&Origin>,
    target_path: &str,
    slots: &BTreeMap<String, usize>,
    think: Option<Think>,
) -> R<Step> {
    let errs = &rs.errs;
    let s = &st.value;
    let own = [
        ("checks", !s.checks.is_empty()),
        ("capture", !s.capture.is_empty()),
        ("query", s.query.is_some()),
        ("sql", s.sql.is_some()),
        ("params", !s.params.is_empty()),
        ("transaction", !s.transaction.is_empty()),
        ("explain", s.explain.is_some()),
    ];
    if let Some(key) = first_set(&http_only_keys(s)).or_else(|| first_set(&own)) {
        return Err(errs.hint(
            &st.referenced,
            format!("a WebSocket step does not take `{key}:`"),
            "messages go in `session:` (`send:`); checks and captures go on a `reply:`; a query goes in the URL",
        ));
    }
    let text = rs.string(url)?;
    let text = text.trim();
    let (origin, path) = if text.starts_with('/') {
        let o = target.ok_or_else(|| {
            errs.hint(
                &url.referenced,
                format!("`{text}` is relative, but the plan has no `target:`"),
                "add `target: http://host:port` or use a full ws:// URL",
            )
        })?;
        (o.clone(), format!("{target_path}{text}"))
    } else {
        let as_http = if let Some(rest) = text.strip_prefix("ws://") {
            format!("http://{rest}")
        } else if let Some(rest) = text.strip_prefix("wss://") {
            format!("https://{rest}")
        } else if text.starts_with("http://") || text.starts_with("https://") {
            text.to_string()
        } else {
            return Err(errs.hint(
                &url.referenced,
                format!("`{text}` is neither a path nor a ws:// or wss:// URL"),
                "e.g. `ws: /ws/echo` (joined to target) or `ws: wss://host/socket`",
            ));
        };
        super::parse_url(&as_http).map_err(|e| errs.at(&url.referenced, e))?
    };
    if without_templates(&path).chars().any(char::is_whitespace) {
        return Err(errs.hint(
            &url.referenced,
            format!("`{path}` contains white space"),
            "encode spaces as %20",
        ));
    }
    let path_and_query = crate::compile::compile(&path, crate::template::Escape::None, names)
        .map_err(|e| errs.at(&url.referenced, e))?;
    let name = match &s.name {
        Some(n) => rs.string(n)?,
        None => format!("WS {}", path.split('?').next().unwrap_or(&path)),
    };
    let mut subprotocols = Vec::new();
    for p in &s.subprotocols {
        let v = rs.string(p)?;
        if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b",;\"()<>@[]{}/?=\\:".contains(&b))
        {
            return Err(errs.hint(
                &p.referenced,
                format!("`{v}` is not a subprotocol name"),
                "a subprotocol is a token such as `graphql-transport-ws` or `v1.chat`",
            ));
        }
        subprotocols.push(v);
    }
    let reconnect = match &s.reconnect {
        Some(r) => Some(Reconnect {
            max: match &r.value.max {
                Some(m) => u32::try_from(rs.count(m, "reconnect.max", 0)?).unwrap_or(u32::MAX),
                None => 3,
            },
            backoff: match &r.value.backoff {
                Some(b) => rs.duration(b, "reconnect.backoff")?,
                None => Duration::from_secs(1),
            },
        }),
        None => None,
    };
    let timeout = s
        .timeout
        .as_ref()
        .map(|t| rs.positive_duration(t, "timeout"))
        .transpose()?;
    let sequence = s
        .sequence
        .as_ref()
        .map(|q| crate::jsonpath::parse(&q.value).map_err(|e| errs.at(&q.referenced, format!("sequence: {e}"))))
        .transpose()?;
    if s.session.is_empty() {
        return Err(errs.hint(
            &st.referenced,
            format!("WebSocket step `{name}` has no `session:`"),
            "e.g. `session: [ { send: hello, reply: { timeout: 2s } } ]` or `[ { receive: { for: 30s } } ]`",
        ));
    }
    let mut ctx = Session {
        rs,
        names,
        slots,
        reply_names: Vec::new(),
        checks: Vec::new(),
    };
    let session = ctx.actions(&s.session)?;
    Ok(Step {
        name,
        kind: StepKind::Ws(WsStep {
            origin,
            path_and_query,
            headers: headers(rs, &s.headers, names)?,
            subprotocols,
            reconnect,
            timeout,
            sequence,
            session,
            reply_names: ctx.reply_names,
        }),
        think,
    })
}

struct Session<'a, 'b> {
    rs: &'a Resolver<'b>,
    names: &'a Names<'a>,
    slots: &'a BTreeMap<String, usize>,
    reply_names: Vec<String>,
    /// Every reply's checks, in order: the step's one list of check names.
    checks: Vec<String>,
}

const ACTIONS: &str = "an action is one of `send:` (with an optional `reply:`), `repeat:` (with `every:` and `do:`), `receive: { for: 30s }` or `receive: { count: N }`, `ping: true`, `close: true`";

impl Session<'_, '_> {
    fn actions(&mut self, raw: &[S<RawWsAction>]) -> R<Vec<WsAction>> {
        raw.iter().map(|a| self.action(a)).collect()
    }

    fn action(&mut self, a: &S<RawWsAction>) -> R<WsAction> {
        let errs = &self.rs.errs;
        let v = &a.value;
        let set: Vec<&str> = [
            ("send", v.send.is_some()),
            ("repeat", v.repeat.is_some()),
            ("receive", v.receive.is_some()),
            ("ping", v.ping.is_some()),
            ("close", v.close.is_some()),
        ]
        .into_iter()
        .filter_map(|(k, on)| on.then_some(k))
        .collect();
        if set.len() > 1 {
            return Err(errs.hint(
                &a.referenced,
                format!("one action per list item: this one has {}", set.join(" and ")),
                "write each as its own `- …` item",
            ));
        }
        if let Some(r) = &v.reply {
            if v.send.is_none() {
                return Err(errs.hint(
                    &r.referenced,
                    "a `reply:` without a `send:`",
                    "a reply answers the message sent in the same action: add `send:`",
                ));
            }
        }
        if v.repeat.is_none() {
            if let Some(e) = &v.every {
                return Err(errs.hint(
                    &e.referenced,
                    "`every:` without `repeat:`",
                    "write `repeat: N` beside it",
                ));
            }
            if let Some(d) = &v.actions {
                let loc = d.first().map_or(a.referenced, |x| x.referenced);
                return Err(errs.hint(
                    &loc,
                    "`do:` without `repeat:`",
                    "write `repeat: N` and `every: D` beside it",
                ));
            }
        }
        if let Some(m) = &v.send {
            let message = self.message(m)?;
            let reply = v.reply.as_ref().map(|r| self.reply(r, m)).transpose()?;
            return Ok(WsAction::Send { message, reply });
        }
        if let Some(n) = &v.repeat {
            let count = u32::try_from(self.rs.count(n, "repeat", 1)?).unwrap_or(u32::MAX);
            let every = match &v.every {
                Some(e) => self.rs.positive_duration(e, "every")?,
                None => {
                    return Err(errs.hint(
                        &n.referenced,
                        "`repeat:` needs `every:`",
                        "e.g. `repeat: 10` with `every: 6s` sends 10 rounds, one every 6 s",
                    ))
                }
            };
            let inner = match &v.actions {
                Some(d) if !d.is_empty() => self.actions(d)?,
                _ => {
                    return Err(errs.hint(
                        &n.referenced,
                        "`repeat:` needs `do:` with at least one action",
                        "e.g. `do: [ { send: ping } ]`",
                    ))
                }
            };
            return Ok(WsAction::Repeat {
                count,
                every,
                actions: inner,
            });
        }
        if let Some(r) = &v.receive {
            return Ok(WsAction::Receive(match (&r.value.for_, &r.value.count) {
                (Some(f), None) => {
                    if let Some(t) = &r.value.timeout {
                        return Err(errs.hint(
                            &t.referenced,
                            "`timeout:` goes with `receive: { count: N }`",
                            "`for:` already says how long to read",
                        ));
                    }
                    Receive::For(self.rs.positive_duration(f, "receive.for")?)
                }
                (None, Some(c)) => Receive::Count {
                    count: self.rs.count(c, "receive.count", 1)?,
                    timeout: r
                        .value
                        .timeout
                        .as_ref()
                        .map(|t| self.rs.positive_duration(t, "receive.timeout"))
                        .transpose()?,
                },
                (Some(_), Some(c)) => {
                    return Err(errs.hint(
                        &c.referenced,
                        "`receive:` takes `for:` or `count:`, not both",
                        "`count:` with `timeout:` bounds the wait",
                    ))
                }
                (None, None) => {
                    return Err(errs.hint(
                        &r.referenced,
                        "`receive:` needs `for:` or `count:`",
                        "e.g. `receive: { for: 30s }` or `receive: { count: 5, timeout: 10s }`",
                    ))
                }
            }));
        }
        if let Some(p) = &v.ping {
            self.flag(p, "ping")?;
            return Ok(WsAction::Ping);
        }
        if let Some(c) = &v.close {
            self.flag(c, "close")?;
            return Ok(WsAction::Close);
        }
        Err(errs.hint(&a.referenced, "an empty action", ACTIONS))
    }

    fn flag(&self, v: &Any, what: &str) -> R<()> {
        match &v.value {
            Value::Bool(true) | Value::Null => Ok(()),
            Value::Object(m) if m.is_empty() => Ok(()),
            _ => Err(self.rs.errs.hint(
                &v.referenced,
                format!("`{what}:` takes `true`"),
                format!("write `- {what}: true`"),
            )),
        }
    }

    /// `send: text {{ vu }}` or `send: { json: { … } }`.
    fn message(&self, m: &Any) -> R<Template> {
        let errs = &self.rs.errs;
        match &m.value {
            Value::Object(o) if o.len() == 1 && o.contains_key("json") => {
                let v = subst_value(self.rs, &o["json"], &m.referenced)?;
                compile_json(&v, self.names).map_err(|e| errs.at(&m.referenced, format!("send.json: {e}")))
            }
            Value::Object(_) | Value::Array(_) => Err(errs.hint(
                &m.referenced,
                "`send:` takes text or `{ json: … }`",
                "e.g. `send: \"hello {{ vu }}\"` or `send: { json: { id: \"{{ uuid() }}\" } }`",
            )),
            _ => template(self.rs, m, "send", crate::template::Escape::None, self.names),
        }
    }

    fn reply(&mut self, r: &S<RawReply>, sent: &Any) -> R<Reply> {
        let errs = &self.rs.errs;
        let v = &r.value;
        let matcher = match &v.matcher {
            None => ReplyMatch::Next,
            Some(m) => match &m.value {
                Value::String(p) => {
                    let path = crate::jsonpath::parse(p).map_err(|e| errs.at(&m.referenced, format!("match: {e}")))?;
                    let json = match &sent.value {
                        Value::Object(o) if o.len() == 1 => o.get("json"),
                        _ => None,
                    };
                    match json {
                        Some(j) if path.select(j).is_some() => {}
                        Some(_) => {
                            return Err(errs.hint(
                                &m.referenced,
                                format!("match: the message sent has nothing at `{p}`"),
                                "the reply matches when its value at the path equals the sent message's",
                            ))
                        }
                        None => {
                            return Err(errs.hint(
                                &m.referenced,
                                "match by a JSON path needs a JSON message",
                                "send `{ json: { … } }`, or match with a check: `match: { json: { path: $.type, equals: ack } }`",
                            ))
                        }
                    }
                    ReplyMatch::SameAt(path)
                }
                Value::Object(_) => ReplyMatch::Check(Box::new(check(self.rs, m)?)),
                _ => {
                    return Err(errs.hint(
                        &m.referenced,
                        "`match:` takes a JSON path or a check",
                        "e.g. `match: \"$.id\"` or `match: { body_contains: pong }`",
                    ))
                }
            },
        };
        let timeout = v
            .timeout
            .as_ref()
            .map(|t| self.rs.positive_duration(t, "reply.timeout"))
            .transpose()?;
        let named = match &v.name {
            Some(n) => {
                let n = self.rs.string(n)?;
                Some(match self.reply_names.iter().position(|x| *x == n) {
                    Some(i) => i,
                    None => {
                        self.reply_names.push(n);
                        self.reply_names.len() - 1
                    }
                })
            }
            None => None,
        };
        let checks = v.checks.iter().map(|c| check(self.rs, c)).collect::<R<Vec<_>>>()?;
        let check_base = u16::try_from(self.checks.len()).map_err(|_| errs.at(&r.referenced, "too many checks"))?;
        self.checks.extend(checks.iter().map(|c| c.name.clone()));
        Ok(Reply {
            matcher,
            timeout,
            named,
            check_base,
            checks,
            captures: captures(self.rs, &v.capture, self.slots)?,
        })
    }
}
