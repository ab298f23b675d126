//! The expectations of logstash-codec-cef's specification, case by case.

use super::*;

fn codec(body: &str) -> CefCodec {
    let mut opts = Options::from_text("cef", "codec", body).unwrap();
    let c = CefCodec::build(&mut opts).unwrap();
    opts.finish().unwrap();
    c
}

fn legacy() -> CefCodec {
    codec("ecs_compatibility => disabled")
}

fn ecs() -> CefCodec {
    codec("ecs_compatibility => v8")
}

fn decode(c: &CefCodec, text: &str) -> Event {
    let mut out = Vec::new();
    c.decode(text.as_bytes(), Timestamp::now(), &mut out);
    assert_eq!(out.len(), 1, "one event per message");
    out.pop().unwrap()
}

fn get<'a>(e: &'a Event, name: &str) -> Option<&'a str> {
    e.get(&field(name))?.as_str()
}

fn encode(c: &CefCodec, e: &Event) -> String {
    let mut buf = Vec::new();
    c.encode(e, &mut buf);
    String::from_utf8(buf).unwrap()
}

fn event(fields: &[(&str, Value)]) -> Event {
    let mut e = Event::new();
    for (k, v) in fields {
        e.insert(&field(k), v.clone());
    }
    e
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

const MESSAGE: &str = "CEF:0|security|threatmanager|1.0|100|trojan successfully stopped|10|src=10.0.0.192 dst=12.121.122.82 spt=1232";

/// Both modes: (codec, legacy name, ECS name) picks the name of the mode.
fn both(mut check: impl FnMut(&CefCodec, &dyn Fn(&'static str, &'static str) -> &'static str)) {
    check(&legacy(), &|l, _| l);
    check(&ecs(), &|_, e| e);
}

#[test]
fn headers_and_extension_under_legacy_and_ecs_names() {
    both(|c, name| {
        let e = decode(c, MESSAGE);
        assert_eq!(get(&e, name("cefVersion", "[cef][version]")), Some("0"));
        assert_eq!(
            get(&e, name("deviceVendor", "[observer][vendor]")),
            Some("security")
        );
        assert_eq!(
            get(&e, name("deviceProduct", "[observer][product]")),
            Some("threatmanager")
        );
        assert_eq!(
            get(&e, name("deviceVersion", "[observer][version]")),
            Some("1.0")
        );
        assert_eq!(
            get(&e, name("deviceEventClassId", "[event][code]")),
            Some("100")
        );
        assert_eq!(
            get(&e, name("name", "[cef][name]")),
            Some("trojan successfully stopped")
        );
        assert_eq!(get(&e, name("severity", "[event][severity]")), Some("10"));
        assert_eq!(
            get(&e, name("sourceAddress", "[source][ip]")),
            Some("10.0.0.192")
        );
        assert_eq!(
            get(&e, name("destinationAddress", "[destination][ip]")),
            Some("12.121.122.82")
        );
        assert_eq!(get(&e, name("sourcePort", "[source][port]")), Some("1232"));
        assert!(e.get_field("tags").is_none());
    });
}

#[test]
fn the_default_is_the_pipeline_default_ecs_v8() {
    let e = decode(&codec(""), MESSAGE);
    assert_eq!(get(&e, "[source][ip]"), Some("10.0.0.192"));
}

#[test]
fn non_cef_payloads_are_kept_and_tagged() {
    for bad in [
        "this is not cef",
        "a|b|c with several \\| escaped\\| pipes|d|bananas",
        "CEF:0|security|threatmanager|1.0|100|trojan successfully stopped|10|this is in the extensions space but it is not valid because it is not equals-separated key/value",
        "CEF:0|a|b|1.0|100|n|10|src=10.0.0.67\nCEF:0|a|b|1.0|100|n|10|src=10.0.0.67\n",
    ] {
        let e = decode(&legacy(), bad);
        assert!(e.has_tag(CEF_PARSE_FAILURE), "{bad}");
        assert_eq!(e.get_str("message"), Some(bad));
    }
    assert!(decode(&legacy(), "CEF:0|a|b|c").has_tag(CEF_PARSE_FAILURE));
    // Invalid UTF-8 is not CEF either; the payload is kept (replaced bytes).
    let mut out = Vec::new();
    legacy().decode(b"CEF:0|a\xff|b|1|2|n|3|", Timestamp::now(), &mut out);
    assert!(out[0].has_tag(CEF_PARSE_FAILURE));
}

#[test]
fn header_escapes() {
    both(|c, name| {
        let e = decode(
            c,
            r"CEF:0|secu\\rity|threat\\manager|1.\\0|10\\0|tro\\jan successfully stopped|\\10|",
        );
        assert_eq!(
            get(&e, name("deviceVendor", "[observer][vendor]")),
            Some(r"secu\rity")
        );
        assert_eq!(
            get(&e, name("deviceProduct", "[observer][product]")),
            Some(r"threat\manager")
        );
        assert_eq!(get(&e, name("severity", "[event][severity]")), Some(r"\10"));
        let e = decode(
            c,
            r"CEF:0|security\\\||threatmanager\\|1.0|100|trojan successfully stopped|10|",
        );
        assert_eq!(
            get(&e, name("deviceVendor", "[observer][vendor]")),
            Some(r"security\|")
        );
        assert_eq!(
            get(&e, name("deviceProduct", "[observer][product]")),
            Some(r"threatmanager\")
        );
        let e = decode(
            c,
            r"CEF:0|secu\|rity|threatmanager\||1.\|0|10\|0|tro\|jan successfully stopped|\|10|",
        );
        assert_eq!(
            get(&e, name("deviceVendor", "[observer][vendor]")),
            Some("secu|rity")
        );
        assert_eq!(
            get(&e, name("deviceProduct", "[observer][product]")),
            Some("threatmanager|")
        );
        assert_eq!(
            get(&e, name("name", "[cef][name]")),
            Some("tro|jan successfully stopped")
        );
        assert_eq!(get(&e, name("severity", "[event][severity]")), Some("|10"));
        let e = decode(
            c,
            r"CEF:0|security|threatmanager|1.0|100|double backslash\\\\|10|src=10.0.0.192",
        );
        assert_eq!(
            get(&e, name("name", "[cef][name]")),
            Some(r"double backslash\\")
        );
        assert_eq!(get(&e, name("severity", "[event][severity]")), Some("10"));
        let e = decode(c, "CEF:0|security|threatmanager=equal|1.0|100|t|10|");
        assert_eq!(
            get(&e, name("deviceProduct", "[observer][product]")),
            Some("threatmanager=equal")
        );
        let e = decode(c, "CEF:0|||1.0|100|t|10|src=10.0.0.192");
        assert_eq!(
            get(&e, name("deviceVendor", "[observer][vendor]")),
            Some("")
        );
    });
}

#[test]
fn extension_values_escapes_spaces_pipes_and_equals() {
    let c = legacy();
    let e = decode(
        &c,
        r"CEF:0|security|threatmanager|1.0|100|t|10|moo=this\|has an escaped pipe",
    );
    assert_eq!(e.get_str("moo"), Some(r"this\|has an escaped pipe"));
    let e = decode(
        &c,
        "CEF:0|security|threatmanager|1.0|100|t|10|moo=this|has an pipe",
    );
    assert_eq!(e.get_str("moo"), Some("this|has an pipe"));
    let e = decode(
        &c,
        r"CEF:0|security|threatmanager|1.0|100|t|10|moo=this =has = equals\=",
    );
    assert_eq!(e.get_str("moo"), Some("this =has = equals="));
    let e = decode(
        &c,
        r"CEF:0|security|threatmanager|1.0|100|t|10|moo=this \has \ backslashs\",
    );
    assert_eq!(e.get_str("moo"), Some(r"this \has \ backslashs\"));
    let e = decode(
        &c,
        r"CEF:0|security|threatmanager|1.0|100|t|10|foo=bar msg=this message has escaped equals \= and escaped newlines \n escaped carriage returns \r and escaped backslashes \\ in it bar=baz",
    );
    assert_eq!(e.get_str("foo"), Some("bar"));
    assert_eq!(
        e.get_str("message"),
        Some("this message has escaped equals = and escaped newlines \n escaped carriage returns \r and escaped backslashes \\ in it")
    );
    assert_eq!(e.get_str("bar"), Some("baz"));
    let e = decode(&c, "CEF:0|security|threatmanager|1.0|100|t|10| src=10.0.0.192  dst=12.121.122.82  spt=1232 dproc=InternetExplorer x.x.x.x");
    assert_eq!(e.get_str("sourceAddress"), Some("10.0.0.192"));
    assert_eq!(e.get_str("destinationAddress"), Some("12.121.122.82"));
    assert_eq!(
        e.get_str("destinationProcessName"),
        Some("InternetExplorer x.x.x.x")
    );
    let query = "key1=value1&key2=value3 aa.bc&key3=value4";
    let e = decode(
        &c,
        &format!(
            "CEF:0|s|t|1.0|100|t|10|go=start now query_string={} final=done",
            query.replace('=', "\\=")
        ),
    );
    assert_eq!(e.get_str("go"), Some("start now"));
    assert_eq!(e.get_str("query_string"), Some(query));
    assert_eq!(e.get_str("final"), Some("done"));
}

#[test]
fn unusual_keys_are_kept() {
    both(|c, name| {
        let e = decode(
            c,
            r"CEF:0|security|threatmanager|1.0|100|t|10|src=10.0.0.192 cs4=401 random.user Admin 0 23041A10181C0000  /CN\=random.user/OU\=User Login additional.dotfieldName=new_value ad.Authentification=MICROSOFT ad.Error_,Code=3221225578 dst=12.121.122.82 ad.field[0]=field0 ad.foo.name[1]=new_name new_key_by_device=new_values here",
        );
        assert_eq!(
            get(&e, name("sourceAddress", "[source][ip]")),
            Some("10.0.0.192")
        );
        assert_eq!(
            get(
                &e,
                name(
                    "deviceCustomString4",
                    "[cef][device_custom_string_4][value]"
                )
            ),
            Some("401 random.user Admin 0 23041A10181C0000  /CN=random.user/OU=User Login")
        );
        assert_eq!(e.get_str("additional.dotfieldName"), Some("new_value"));
        assert_eq!(e.get_str("ad.Authentification"), Some("MICROSOFT"));
        assert_eq!(e.get_str("ad.Error_,Code"), Some("3221225578"));
        assert_eq!(get(&e, "[ad.field][0]"), Some("field0"));
        assert_eq!(get(&e, "[ad.foo.name][1]"), Some("new_name"));
        assert_eq!(e.get_str("new_key_by_device"), Some("new_values here"));
    });
}

#[test]
fn abbreviated_and_numbered_keys_expand() {
    both(|c, name| {
        let e = decode(c, "CEF:0|s|t|1.0|100|t|10|proto=TCP shost=source.host.name dhost=destination.host.name dpt=9200 outcome=Success amac=00:80:48:1c:24:91 dvchost=loghost fileHash=1bad1dea cfp15=3.1415926 cfp15Label=pi c6a12=::1 cn7=8191 cs4Label=theory");
        assert_eq!(e.get_field("tags"), None, "{}", e.to_json_string());
        assert_eq!(
            get(&e, name("transportProtocol", "[network][transport]")),
            Some("TCP")
        );
        assert_eq!(
            get(&e, name("sourceHostName", "[source][domain]")),
            Some("source.host.name")
        );
        assert_eq!(
            get(&e, name("destinationHostName", "[destination][domain]")),
            Some("destination.host.name")
        );
        assert_eq!(
            get(&e, name("destinationPort", "[destination][port]")),
            Some("9200")
        );
        assert_eq!(
            get(&e, name("eventOutcome", "[event][outcome]")),
            Some("Success")
        );
        assert_eq!(
            get(&e, name("agentMacAddress", "[agent][mac]")),
            Some("00:80:48:1c:24:91")
        );
        assert_eq!(
            get(&e, name("deviceHostName", "[observer][hostname]")),
            Some("loghost")
        );
        assert_eq!(get(&e, name("fileHash", "[file][hash]")), Some("1bad1dea"));
        assert_eq!(
            get(
                &e,
                name(
                    "deviceCustomFloatingPoint15",
                    "[cef][device_custom_floating_point_15][value]"
                )
            ),
            Some("3.1415926")
        );
        assert_eq!(
            get(
                &e,
                name(
                    "deviceCustomFloatingPoint15Label",
                    "[cef][device_custom_floating_point_15][label]"
                )
            ),
            Some("pi")
        );
        assert_eq!(
            get(
                &e,
                name(
                    "deviceCustomIPv6Address12",
                    "[cef][device_custom_ipv6_address_12][value]"
                )
            ),
            Some("::1")
        );
        assert_eq!(
            get(
                &e,
                name(
                    "deviceCustomNumber7",
                    "[cef][device_custom_number_7][value]"
                )
            ),
            Some("8191")
        );
        assert_eq!(
            get(
                &e,
                name(
                    "deviceCustomString4Label",
                    "[cef][device_custom_string_4][label]"
                )
            ),
            Some("theory")
        );
    });
    let e = decode(
        &legacy(),
        "CEF:0|s|t|1.0|100|t|10|proto=TCP shost=source.host.name",
    );
    assert_eq!(e.get_field("tags"), None, "{:?}", e.get_field("message"));
    // `device => host`: the device's fields describe the host.
    let e = decode(
        &codec("device => host"),
        "CEF:0|s|t|1.0|100|t|10|dvchost=web-1 dvc=10.1.1.1",
    );
    assert_eq!(get(&e, "[host][name]"), Some("web-1"));
    assert_eq!(get(&e, "[host][ip]"), Some("10.1.1.1"));
}

#[test]
fn legacy_aliases() {
    let line = "CEF:0|security|threatmanager|1.0|100|target acquired|10|destinationLongitude=-73.614830 destinationLatitude=45.505918 sourceLongitude=45.4628328 sourceLatitude=9.1076927";
    let e = decode(&legacy(), line);
    assert_eq!(e.get_str("destinationLongitude"), Some("-73.614830"));
    assert_eq!(e.get_str("sourceLatitude"), Some("9.1076927"));
    let e = decode(&ecs(), line);
    assert_eq!(
        get(&e, "[destination][geo][location][lon]"),
        Some("-73.614830")
    );
    assert_eq!(get(&e, "[source][geo][location][lat]"), Some("9.1076927"));
}

#[test]
fn syslog_prefix_is_kept_apart() {
    both(|c, name| {
        let e = decode(c, &format!("Syslogdate Sysloghost {MESSAGE}"));
        assert_eq!(
            get(&e, name("syslog", "[log][syslog][header]")),
            Some("Syslogdate Sysloghost")
        );
        assert_eq!(get(&e, name("cefVersion", "[cef][version]")), Some("0"));
        assert_eq!(
            get(&e, name("sourceAddress", "[source][ip]")),
            Some("10.0.0.192")
        );
    });
}

#[test]
fn quotes_trailing_newline_and_raw_data_field() {
    let e = decode(&legacy(), &format!("\"{MESSAGE}\""));
    assert_eq!(e.get_str("sourcePort"), Some("1232"));
    let e = decode(&legacy(), &format!("{MESSAGE}\r\n"));
    assert_eq!(e.get_str("sourcePort"), Some("1232"));
    let e = decode(
        &codec("ecs_compatibility => disabled raw_data_field => message_raw"),
        MESSAGE,
    );
    assert_eq!(e.get_str("message_raw"), Some(MESSAGE));
}

#[test]
fn delimiter_splits_a_payload() {
    let c = codec(r#"ecs_compatibility => disabled delimiter => "\r\n""#);
    let two = format!("{MESSAGE}\r\n{}\r\n", MESSAGE.replace("security", "fun"));
    let mut out = Vec::new();
    c.decode(two.as_bytes(), Timestamp::now(), &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].get_str("deviceVendor"), Some("security"));
    assert_eq!(out[1].get_str("deviceVendor"), Some("fun"));
}

#[test]
fn ecs_timestamps_are_normalized() {
    let line = "CEF:0|Security|threatmanager|1.0|100|worm successfully stopped|Very-High| eventId=1 msg=Worm successfully stopped art=1500464384997 deviceSeverity=10 rt=Jul 19 2017 10:50:21.127 src=10.0.0.1 dtz=Europe/Moscow";
    let e = decode(&ecs(), line);
    assert!(e.get_field("tags").is_none(), "{:?}", e.get_field("tags"));
    assert_eq!(
        e.timestamp().unwrap().to_iso8601(),
        "2017-07-19T07:50:21.127Z"
    );
    match e.get(&field("[event][created]")) {
        Some(Value::Timestamp(t)) => assert_eq!(t.unix_millis(), 1500464384997),
        other => panic!("art: {other:?}"),
    }
    assert_eq!(get(&e, "[event][timezone]"), Some("Europe/Moscow"));
    // Legacy mode keeps the text.
    let e = decode(&legacy(), line);
    assert_eq!(
        e.get_str("deviceReceiptTime"),
        Some("Jul 19 2017 10:50:21.127")
    );
    // Its own zone wins; an empty value sets nothing; a bad one fails the event.
    let e = decode(
        &ecs(),
        "CEF:0|s|t|1|2|n|3|end=Jul 19 2017 10:50:21 UTC start=",
    );
    assert_eq!(
        e.get(&field("[event][end]")).and_then(|v| match v {
            Value::Timestamp(t) => Some(t.to_iso8601()),
            _ => None,
        }),
        Some("2017-07-19T10:50:21.000Z".to_string())
    );
    assert!(e.get(&field("[event][start]")).is_none());
    assert!(decode(&ecs(), "CEF:0|s|t|1|2|n|3|rt=yesterday").has_tag(CEF_PARSE_FAILURE));
    // Without a year: this year unless that is more than two days ahead.
    let e = decode(&ecs(), "CEF:0|s|t|1|2|n|3|rt=Jan 01 00:00:00 UTC");
    let ts = e.timestamp().unwrap();
    assert!(*ts.datetime() <= chrono::Utc::now() + chrono::Duration::days(2));
}

#[test]
fn encode_header_defaults_templates_and_sanitizing() {
    let c = codec("");
    assert_eq!(
        encode(&c, &event(&[("foo", s("bar"))])),
        "CEF:0|Elasticsearch|Logstash|1.0|Logstash|Logstash|6|"
    );
    let c = codec(
        r#"vendor => "" product => "" version => "" signature => "" name => "" severity => """#,
    );
    assert_eq!(
        encode(&c, &event(&[])),
        "CEF:0|Elasticsearch|Logstash|1.0|Logstash|Logstash|6|"
    );
    let c = codec(
        r#"vendor => "%{v}" product => "%{p}" version => "2.0" signature => "sig" name => "%{n}" severity => "%{sev}""#,
    );
    let e = event(&[
        ("v", s("ven\ndor")),
        ("p", s("pro|duct")),
        ("n", s("na\r\nme")),
        ("sev", s("4")),
    ]);
    assert_eq!(encode(&c, &e), "CEF:0|ven dor|pro\\|duct|2.0|sig|na me|4|");
    for (sev, want) in [
        ("foo", "6"),
        ("11", "6"),
        ("-1", "6"),
        ("4.5", "6"),
        ("7.0", "7"),
        ("0", "0"),
        ("10", "10"),
    ] {
        let c = codec(&format!("severity => \"{sev}\""));
        assert!(
            encode(&c, &event(&[])).ends_with(&format!("|{want}|")),
            "{sev}"
        );
    }
    let c = codec(r#"vendor => "ver\sion""#);
    assert!(encode(&c, &event(&[])).starts_with(r"CEF:0|ver\\sion|"));
}

#[test]
fn encode_extension_fields() {
    let c = codec(r#"fields => ["foo", "bar", "baz"]"#);
    let e = event(&[("foo", s("foo value")), ("baz", s("baz value"))]);
    assert!(encode(&c, &e).ends_with("|6|foo=foo value baz=baz value"));
    let e = event(&[("foo", s("foo\\value\n")), ("bar", s("bar=value\r"))]);
    assert!(encode(&c, &e).ends_with(r"|6|foo=foo\\value\n bar=bar\=value\n"));
    let c = codec(r#"fields => ["[f o]", "@b-a_r"]"#);
    let mut e = Event::new();
    e.insert(&FieldRef::top("f o"), s("foo value"));
    e.insert(&FieldRef::top("@b-a_r"), s("bar value"));
    assert!(encode(&c, &e).ends_with("|6|fo=foo value bar=bar value"));
    let c = codec(r#"fields => ["foo"]"#);
    let mut map = crate::event::new_map();
    map.insert("bar".into(), s("bar value"));
    let e = event(&[("foo", Value::Map(map))]);
    assert!(
        encode(&c, &e).ends_with(r#"|6|foo={"bar":"bar value"}"#),
        "{}",
        encode(&c, &e)
    );
    let e = event(&[("foo", Value::Array(vec![s("bar"), s("baz")]))]);
    assert!(encode(&c, &e).ends_with(r#"|6|foo=["bar","baz"]"#));
    let e = event(&[("foo", Value::Timestamp(Timestamp::from_unix(0, 0).unwrap()))]);
    assert!(encode(&c, &e).ends_with("|6|foo=1970-01-01T00:00:00.000Z"));
    let c = codec(r#"fields => ["foo"] delimiter => "\r\n""#);
    assert!(encode(&c, &event(&[])).ends_with("|6|\r\n"));
}

#[test]
fn encode_names_long_or_short_and_from_ecs_fields() {
    let fields = r#"fields => ["deviceAction", "sourceAddress", "deviceCustomString1Label", "sourceLongitude", "message"]"#;
    let e = event(&[
        ("deviceAction", s("block")),
        ("sourceAddress", s("10.0.0.1")),
        ("deviceCustomString1Label", s("l")),
        ("sourceLongitude", s("1.5")),
        ("message", s("m")),
    ]);
    let long = encode(
        &codec(&format!("ecs_compatibility => disabled {fields}")),
        &e,
    );
    assert!(long.ends_with("|6|deviceAction=block sourceAddress=10.0.0.1 deviceCustomString1Label=l sourceLongitude=1.5 message=m"), "{long}");
    let short = encode(
        &codec(&format!(
            "ecs_compatibility => disabled reverse_mapping => true {fields}"
        )),
        &e,
    );
    assert!(
        short.ends_with("|6|act=block src=10.0.0.1 cs1Label=l slong=1.5 msg=m"),
        "{short}"
    );
    let c = codec(
        r#"ecs_compatibility => v8 fields => ["[event][action]", "[observer][hostname]", "[user_agent][original]", "[source][registered_domain]"]"#,
    );
    let e = event(&[
        ("[event][action]", s("floop")),
        ("[observer][hostname]", s("banana")),
        ("[user_agent][original]", s("Foo; Guid:test=")),
        ("[source][registered_domain]", s("monkey.see")),
    ]);
    assert!(encode(&c, &e).ends_with(r"|6|deviceAction=floop deviceHostName=banana requestClientApplication=Foo; Guid:test\= sourceDnsDomain=monkey.see"), "{}", encode(&c, &e));
}

#[test]
fn encode_then_decode_gives_the_event_back() {
    both(|_, name| {
        let fields = [
            name("deviceVendor", "[observer][vendor]"),
            name("sourceAddress", "[source][ip]"),
            name(
                "deviceCustomString1",
                "[cef][device_custom_string_1][value]",
            ),
        ];
        let mode = if fields[0] == "deviceVendor" {
            "disabled"
        } else {
            "v8"
        };
        let c = codec(&format!(
            r#"ecs_compatibility => {mode} vendor => "%{{{}}}" fields => ["{}", "{}"]"#,
            fields[0], fields[1], fields[2]
        ));
        let e = event(&[
            (fields[0], s("ven|dor\\")),
            (fields[1], s("10.0.0.1")),
            (fields[2], s("a = b \\ c\nd")),
        ]);
        let back = decode(&c, &encode(&c, &e));
        assert_eq!(get(&back, fields[0]), Some("ven|dor\\"));
        assert_eq!(get(&back, fields[1]), Some("10.0.0.1"));
        assert_eq!(get(&back, fields[2]), Some("a = b \\ c\nd"));
    });
}

#[test]
fn options_are_checked() {
    let build =
        |body: &str| CefCodec::build(&mut Options::from_text("cef", "codec", body).unwrap());
    assert!(build("device => nowhere").is_err());
    assert!(build(r#"default_timezone => "Mars/Olympus""#).is_err());
    assert!(build("ecs_compatibility => v9").is_err());
    assert!(build(r#"default_timezone => "Europe/Paris" locale => en device => host"#).is_ok());
}

#[test]
fn month_names_are_read_in_the_locale() {
    let german = codec(r#"locale => "de-DE""#);
    let e = decode(&german, "CEF:0|s|t|1|2|n|3|rt=Mär 19 2017 10:50:21 UTC");
    assert!(e.get_field("tags").is_none(), "{:?}", e.get_field("tags"));
    assert_eq!(
        e.timestamp().unwrap().to_iso8601(),
        "2017-03-19T10:50:21.000Z"
    );
    let e = decode(&german, "CEF:0|s|t|1|2|n|3|rt=Okt. 01 2017 00:00:00 UTC");
    assert_eq!(
        e.timestamp().unwrap().to_iso8601(),
        "2017-10-01T00:00:00.000Z"
    );
    // Only the locale's names, as Joda reads them: English "May" is not German.
    assert!(
        decode(&german, "CEF:0|s|t|1|2|n|3|rt=May 19 2017 10:50:21 UTC").has_tag(CEF_PARSE_FAILURE)
    );
    // English by default, any case; epoch milliseconds whatever the locale.
    let e = decode(&ecs(), "CEF:0|s|t|1|2|n|3|rt=MAY 19 2017 10:50:21 UTC");
    assert_eq!(
        e.timestamp().unwrap().to_iso8601(),
        "2017-05-19T10:50:21.000Z"
    );
    let e = decode(&german, "CEF:0|s|t|1|2|n|3|rt=1500464384997");
    assert_eq!(e.timestamp().unwrap().unix_millis(), 1500464384997);
    // An unknown locale is a load error that names it and where it is.
    let err =
        CefCodec::build(&mut Options::from_text("cef", "codec", r#"locale => "xx-YY""#).unwrap())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
    assert!(err.contains("xx-YY"), "{err}");
}
