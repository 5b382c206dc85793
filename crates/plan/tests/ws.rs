//! WebSocket steps in plans: the documented forms resolve; every malformed session is refused
//! with the line and column of what is wrong.

use std::time::Duration;

use stampede_plan::*;

mod common;
use common::load_with;

fn load(src: &str) -> Result<Plan, PlanError> {
    load_with(src, &[], &[])
}

fn plan(session: &str) -> String {
    format!(
        "name: ws\ntarget: http://127.0.0.1:9\nscenarios:\n  rt:\n    steps:\n      - name: feed\n        ws: /ws/echo\n        session:\n{session}phases:\n  - {{ name: p, scenario: rt, vus: 1, duration: 1s }}\n"
    )
}

fn ws_step(p: &Plan) -> &WsStep {
    match &p.scenarios[0].steps[0].kind {
        StepKind::Ws(w) => w,
        other => panic!("not a ws step: {other:?}"),
    }
}

#[test]
fn the_documented_session_resolves() {
    let src = r#"
name: realtime
target: https://api.example.com/v1
vars: { token: abc }
scenarios:
  realtime:
    steps:
      - name: feed
        ws: /ws/echo
        headers: { Authorization: "Bearer {{ token }}" }
        subprotocols: [ v1.chat ]
        reconnect: { max: 3, backoff: 1s }
        sequence: "$.seq"
        session:
          - send: { json: { id: "{{ uuid() }}", text: hello } }
            reply: { match: "$.id", timeout: 2s, checks: [ { json: { path: "$.text", equals: hello } } ] }
          - repeat: 10
            every: 6s
            do:
              - send: { json: { id: "{{ uuid() }}", n: "{{ iteration }}" } }
                reply: { match: "$.id", timeout: 2s, name: tick, capture: { last: { json: "$.n" } } }
          - receive: { for: 30s }
          - receive: { count: 2, timeout: 5s }
          - ping: true
          - close: true
      - name: other
        ws: wss://push.example.com:8443/feed?x=1
        session: [ { send: "plain {{ vu }}", reply: { match: { body_contains: plain } } } ]
phases:
  - { name: p, scenario: realtime, vus: 1, duration: 1s }
"#;
    let p = load(src).unwrap();
    let w = ws_step(&p);
    assert!(w.origin.tls, "https target → wss");
    assert_eq!(w.origin.host, "api.example.com");
    assert_eq!(w.path_and_query.as_literal().map(|b| &b[..]), Some(&b"/v1/ws/echo"[..]));
    assert_eq!(w.subprotocols, ["v1.chat"]);
    assert_eq!(
        w.reconnect,
        Some(Reconnect {
            max: 3,
            backoff: Duration::from_secs(1)
        })
    );
    assert!(w.sequence.is_some());
    assert_eq!(w.reply_names, ["tick"]);
    assert_eq!(w.check_names().len(), 1);
    assert_eq!(w.session.len(), 6);
    match &w.session[1] {
        WsAction::Repeat { count, every, actions } => {
            assert_eq!((*count, *every), (10, Duration::from_secs(6)));
            let WsAction::Send { reply: Some(r), .. } = &actions[0] else {
                panic!()
            };
            assert_eq!((r.named, r.check_base, r.captures.len()), (Some(0), 1, 1));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(w.session[2], WsAction::Receive(Receive::For(d)) if d == Duration::from_secs(30)));
    assert!(matches!(
        w.session[3],
        WsAction::Receive(Receive::Count { count: 2, .. })
    ));
    assert!(matches!(w.session[4], WsAction::Ping));
    assert!(matches!(w.session[5], WsAction::Close));
    let StepKind::Ws(o) = &p.scenarios[0].steps[1].kind else {
        panic!()
    };
    assert_eq!(
        (o.origin.tls, o.origin.port, o.origin.host.as_str()),
        (true, 8443, "push.example.com")
    );
    let WsAction::Send { reply: Some(r), .. } = &o.session[0] else {
        panic!()
    };
    assert!(matches!(r.matcher, ReplyMatch::Check(_)));
}

/// (session text, what the message says, the line the error points at)
#[test]
fn malformed_sessions_are_refused_with_where() {
    let cases: &[(&str, &str, usize)] = &[
        (
            "          - reply: { timeout: 1s }\n",
            "a `reply:` without a `send:`",
            9,
        ),
        (
            "          - send: hi\n            reply: { timeout: 0s }\n",
            "longer than 0",
            10,
        ),
        ("          - sned: hi\n", "sned", 9),
        ("          - receive: {}\n", "`receive:` needs `for:` or `count:`", 9),
        ("          - receive: { for: 1s, count: 2 }\n", "not both", 9),
        (
            "          - repeat: 3\n            do: [ { send: x } ]\n",
            "`repeat:` needs `every:`",
            9,
        ),
        ("          - repeat: 3\n            every: 1s\n", "needs `do:`", 9),
        ("          - every: 1s\n", "`every:` without `repeat:`", 9),
        (
            "          - send: hi\n            ping: true\n",
            "one action per list item",
            9,
        ),
        (
            "          - send: hi\n            reply: { match: \"$.id\" }\n",
            "needs a JSON message",
            10,
        ),
        (
            "          - send: { json: { a: 1 } }\n            reply: { match: \"$.id\" }\n",
            "nothing at `$.id`",
            10,
        ),
        ("          - {}\n", "an empty action", 9),
        ("          - ping: 3\n", "`ping:` takes `true`", 9),
    ];
    for (session, says, line) in cases {
        let e = load(&plan(session)).expect_err(session);
        assert!(e.to_string().contains(says), "{session:?}: {e}");
        assert_eq!(e.line, *line, "{session:?}: {e}");
        assert!(e.column >= 1, "{e}");
    }
}

#[test]
fn ws_keys_outside_a_ws_step_and_http_keys_inside_one_are_refused() {
    let e = load("name: x\ntarget: http://h:1\nscenarios:\n  s:\n    steps:\n      - { request: GET /, session: [ { ping: true } ] }\nphases:\n  - { name: p, scenario: s, vus: 1, duration: 1s }\n").unwrap_err();
    assert!(e.to_string().contains("belongs to a WebSocket step"), "{e}");
    let e = load("name: x\ntarget: http://h:1\nscenarios:\n  s:\n    steps:\n      - { ws: /w, checks: [ { status: 200 } ], session: [ { ping: true } ] }\nphases:\n  - { name: p, scenario: s, vus: 1, duration: 1s }\n").unwrap_err();
    assert!(e.to_string().contains("does not take `checks:`"), "{e}");
    let e = load("name: x\ntarget: http://h:1\nscenarios:\n  s:\n    steps:\n      - { ws: /w, auth: { bearer: t }, session: [ { ping: true } ] }\nphases:\n  - { name: p, scenario: s, vus: 1, duration: 1s }\n").unwrap_err();
    assert!(
        e.to_string().contains("does not take `auth:`"),
        "an HTTP key on a WebSocket step: {e}"
    );
    let e = load("name: x\ntarget: http://h:1\nscenarios:\n  s:\n    steps:\n      - { ws: /w }\nphases:\n  - { name: p, scenario: s, vus: 1, duration: 1s }\n").unwrap_err();
    assert!(e.to_string().contains("has no `session:`"), "{e}");
    let e = load("name: x\nscenarios:\n  s:\n    steps:\n      - { ws: ftp://h/w, session: [ { ping: true } ] }\nphases:\n  - { name: p, scenario: s, vus: 1, duration: 1s }\n").unwrap_err();
    assert!(e.to_string().contains("neither a path nor a ws://"), "{e}");
}

#[test]
fn ws_thresholds_parse() {
    let src = plan("          - ping: true\n").replace(
        "phases:",
        "thresholds:\n  - ws_lost_rate < 0.1%\n  - connect_failed < 1%\nphases:",
    );
    let p = load(&src).unwrap();
    assert_eq!(p.thresholds[0].metric, Metric::WsLostRate);
    assert_eq!(p.thresholds[1].metric, Metric::ConnectFailed);
}
