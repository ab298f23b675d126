//! fingerprint filter: the digests of Logstash's fingerprint_spec.rb, byte for byte.

use sluice::event::field_ref::FieldRef;
use sluice::event::{Event, Timestamp, Value};
use sluice::filters::{self, Filter};
use sluice::plugin::Options;

fn build(body: &str) -> Result<Box<dyn Filter>, String> {
    let mut o = Options::from_text("fingerprint", "filter", body).map_err(|e| e.to_string())?;
    let f = filters::build("fingerprint", &mut o).map_err(|e| e.to_string())?;
    o.finish().map_err(|e| e.to_string())?;
    Ok(f)
}

/// Fingerprints an event of `fields` and returns the ECS and the legacy target.
fn fp(body: &str, fields: &[(&str, Value)]) -> Value {
    let mut out = Vec::new();
    for ecs in ["v8", "disabled"] {
        let f =
            build(&format!("{body} ecs_compatibility => {ecs}")).unwrap_or_else(|e| panic!("{e}"));
        let mut e = Event::at(Timestamp::now());
        for (k, v) in fields {
            e.insert(&FieldRef::parse(k).unwrap(), v.clone());
        }
        let mut v = vec![e];
        f.filter(&mut v);
        let target = if ecs == "v8" {
            "[event][hash]"
        } else {
            "fingerprint"
        };
        out.push(
            v[0].get(&FieldRef::parse(target).unwrap())
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    assert_eq!(out[0], out[1], "ECS and legacy differ only in the target");
    out.remove(0)
}

fn s(v: &str) -> Value {
    Value::from(v)
}

const IP: &str = "123.123.123.123";

fn ip_case(method: &str, extra: &str) -> Value {
    fp(
        &format!(r#"source => ["clientip"] method => "{method}" {extra}"#),
        &[("clientip", s(IP))],
    )
}

#[test]
fn ipv4_network() {
    assert_eq!(
        ip_case("IPV4_NETWORK", r#"key => "24""#),
        s("123.123.123.0")
    );
    assert!(
        build(r#"method => "IPV4_NETWORK""#).is_err(),
        "key is required"
    );
}

#[test]
fn murmur3_of_strings_and_integers() {
    assert_eq!(ip_case("MURMUR3", ""), Value::Int(4013733395));
    assert_eq!(
        fp(
            r#"source => ["clientip"] method => "MURMUR3""#,
            &[("clientip", Value::Int(123))]
        ),
        Value::Int(823512154)
    );
}

#[test]
fn murmur3_128_of_strings_and_integers() {
    assert_eq!(
        ip_case("MURMUR3_128", ""),
        s("41cbc4056eed401d091dfbeabf7ea9e0")
    );
    assert_eq!(
        ip_case("MURMUR3_128", "base64encode => true"),
        s("QcvEBW7tQB0JHfvqv36p4A==")
    );
    let m = |v: i64, b64: bool| {
        fp(
            &format!(r#"source => ["clientip"] method => "MURMUR3_128" base64encode => {b64}"#),
            &[("clientip", Value::Int(v))],
        )
    };
    assert_eq!(m(123, false), s("286816c693ac410ed63e1430dcd6f6fe"));
    assert_eq!(m(123, true), s("KGgWxpOsQQ7WPhQw3Nb2/g=="));
    assert_eq!(m(2148483647, false), s("fdc7699a82556c8c584131f0133ee989"));
    assert_eq!(m(2148483647, true), s("/cdpmoJVbIxYQTHwEz7piQ=="));
}

#[test]
fn digests_with_and_without_hmac_key() {
    let key = r#"key => "longencryptionkey""#;
    let cases = [
        ("SHA1", "3a5076c520b4b463f43806896ea0b3978d09dcae", "fdc60acc4773dc5ac569ffb78fcb93c9630797f4", "/cYKzEdz3FrFaf+3j8uTyWMHl/Q="),
        ("SHA256", "4dabcab210766e35f03e77120e6986d6e6d4752b2a9ff22980b9253d026080d8", "345bec3eff242d53b568916c2610b3e393d885d6b96d643f38494fd74bf4a9ca", "NFvsPv8kLVO1aJFsJhCz45PYhda5bWQ/OElP10v0qco="),
        ("SHA384", "fd605b0a3af3e04ce0d7a0b0d9c48d67a12dab811f60072e6eae84e35d567793ffb68a1807536f11c90874065c2a4392", "22d4c0e8c4fbcdc4887d2038fca7650f0e2e0e2457ff41c06eb2a980dded6749561c814fe182aff93e2538d18593947a", "ItTA6MT7zcSIfSA4/KdlDw4uDiRX/0HAbrKpgN3tZ0lWHIFP4YKv+T4lONGFk5R6"),
        ("SHA512", "5468e2dc64ea92b617782aae884b35af60041ac9e168a283615b6a462c54c13d42fa9542cce9b7d76a8124ac6616818905e3e5dd35d6e519f77c3b517558639a", "11c19b326936c08d6c50a3c847d883e5a1362e6a64dd55201a25f2c1ac1b673f7d8bf15b8f112a4978276d573275e3b14166e17246f670c2a539401c5bfdace8", "EcGbMmk2wI1sUKPIR9iD5aE2Lmpk3VUgGiXywawbZz99i/FbjxEqSXgnbVcydeOxQWbhckb2cMKlOUAcW/2s6A=="),
        ("MD5", "ccdd8d3d940a01b2fb3258c059924c0d", "9336c879e305c9604a3843fc3e75948f", "kzbIeeMFyWBKOEP8PnWUjw=="),
    ];
    for (method, plain, hmac, hmac64) in cases {
        assert_eq!(ip_case(method, ""), s(plain), "{method}");
        assert_eq!(ip_case(method, key), s(hmac), "{method} hmac");
        assert_eq!(
            ip_case(method, &format!("{key} base64encode => true")),
            s(hmac64),
            "{method} hmac base64"
        );
    }
    assert_eq!(
        ip_case("SHA1", "base64encode => true"),
        s("OlB2xSC0tGP0OAaJbqCzl40J3K4=")
    );
}

#[test]
fn arrays_give_one_fingerprint_per_value() {
    assert_eq!(
        fp(
            r#"source => ["clientip"]"#,
            &[("clientip", Value::Array(vec![s(IP), s("223.223.223.223")]))]
        ),
        Value::Array(vec![
            s("3a5076c520b4b463f43806896ea0b3978d09dcae"),
            s("47bbc4e06edebbace047fed35abeceec64968b81")
        ])
    );
}

#[test]
fn concatenation() {
    let ts = Value::Timestamp(Timestamp::parse_iso8601("2017-07-26T14:44:27.064Z").unwrap());
    assert_eq!(
        fp(
            "concatenate_all_fields => true",
            &[
                ("@timestamp", ts),
                ("clientip", s(IP)),
                ("message", s("This is a test message")),
                ("log_level", s("INFO")),
                ("offset", Value::Int(123456789)),
                ("type", s("test"))
            ],
        ),
        s("cbf022518e97860403160ed8a41847c0db104e63")
    );
    let two = [("field1", s("test1")), ("field2", s("test2"))];
    assert_eq!(
        fp(r#"source => ["field1", "field2"]"#, &two),
        s("109f4b3c50d7b0df729d299bc6f8e9ef9066971f"),
        "the last field wins"
    );
    assert_eq!(
        fp(
            r#"source => ["field1", "field2"] concatenate_sources => true"#,
            &two
        ),
        s("e3b6b71eedc656f1d29408264e8a75535db985cb")
    );
    let mut inner = sluice::event::new_map();
    inner.insert("inner_key".into(), s("🂡"));
    let mut one = sluice::event::new_map();
    one.insert("1".into(), s("2"));
    let nested = [
        (
            "field1",
            Value::Array(vec![Value::Map(inner), Value::Map(one)]),
        ),
        ("field2", s("🂡")),
    ];
    assert_eq!(
        fp(r#"source => ["field1", "field2"]"#, &nested),
        s("58fa9e0e60c9f0d24b51d84cddb26732a39eeb3d")
    );
    assert_eq!(
        fp(
            r#"source => ["field1", "field2"] concatenate_sources => true"#,
            &nested
        ),
        s("d2a1c14e0c9ef137d67114db23b3f2fdbcc90d08")
    );
}

#[test]
fn punctuation_and_uuid() {
    let msg = "PHP Warning:  json_encode() [<a href='function.json-encode'>function.json-encode</a>]: Invalid UTF-8 sequence in argument in /var/www/htdocs/test.php on line 233";
    assert_eq!(
        fp(
            r#"source => ["field1"] method => "PUNCTUATION""#,
            &[("field1", s(msg))]
        ),
        s(":_()[<='.-'>.-</>]:-////.")
    );
    let f = build(r#"method => "UUID" target => "id""#).unwrap();
    let mut v = vec![Event::at(Timestamp::now()), Event::at(Timestamp::now())];
    f.filter(&mut v);
    let id = |e: &Event| e.get_str("id").map(str::to_string).unwrap_or_default();
    assert_eq!(id(&v[0]).len(), 36);
    assert_ne!(id(&v[0]), id(&v[1]), "a fresh UUID per event");
}

#[test]
fn timestamps() {
    let epoch = Value::Timestamp(Timestamp::from_unix(0, 0).unwrap());
    assert_eq!(
        fp(
            r#"source => ["@timestamp"] key => "0123" method => "SHA1""#,
            &[("@timestamp", epoch.clone())]
        ),
        s("1d5379ec92d86a67cfc642d55aa050ca312d3b9a")
    );
    assert_eq!(
        fp(
            r#"source => ["@timestamp"] method => "MURMUR3""#,
            &[("@timestamp", epoch.clone())]
        ),
        Value::Int(743372282)
    );
    assert_eq!(
        fp(
            r#"source => ["@timestamp"] method => "MURMUR3_128""#,
            &[("@timestamp", epoch)]
        ),
        s("37785b62a8cae473acc315d39b66d86e")
    );
    let at = |t: &str| Value::Timestamp(Timestamp::parse_iso8601(t).unwrap());
    assert_eq!(
        fp(
            r#"source => ["@timestamp"] method => "MURMUR3""#,
            &[("@timestamp", at("2000-01-01T05:00:00.12Z"))]
        ),
        Value::Int(4263087275)
    );
}

#[test]
fn unknown_method_is_refused() {
    assert!(build(r#"method => "CRC32""#).is_err());
}
