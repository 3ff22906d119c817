//! Codec tests: round trips, every rejection reason, and sync-engine's own entries.

use super::*;
use crate::{content_hash_hex, StreamId, SyncItem};
use proptest::prelude::*;

const ID: StreamId = StreamId::new(7, 1);

fn decode(fields: &[(&str, Vec<u8>)]) -> Result<CdcEvent, CdcDecodeError> {
    CdcDecoder::default().decode(ID, fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
}

fn put_fields(content: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut item = SyncItem::new("uk.a.b", content.to_vec(), 3, 1_735_776_000_003);
    item.trace_parent = None;
    CdcEncoder::new().encode_put(&item)
}

fn replace(fields: &mut [(&'static str, Vec<u8>)], name: &str, value: Vec<u8>) {
    for (k, v) in fields.iter_mut() {
        if *k == name {
            *v = value.clone();
        }
    }
}

fn reason(result: Result<CdcEvent, CdcDecodeError>) -> RejectReason {
    result.expect_err("entry should be rejected").reason
}

proptest! {
    #[test]
    fn put_round_trips(
        key in "[a-z0-9]{1,8}(\\.[a-z0-9:]{1,8}){0,4}",
        content in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            // Compressible content, so the zstd branch is exercised.
            (any::<u8>(), 64usize..4000).prop_map(|(b, n)| vec![b; n]),
            // Content that genuinely starts with the zstd magic travels raw.
            proptest::collection::vec(any::<u8>(), 0..200).prop_map(|tail| [ZSTD_MAGIC.to_vec(), tail].concat()),
        ],
        version in any::<u64>(),
        updated_at in any::<i64>(),
        json in any::<bool>(),
        trace in proptest::option::of("00-[0-9a-f]{32}-[0-9a-f]{16}-01"),
    ) {
        let mut item = SyncItem::new(key, content, version, updated_at);
        if json { item.content_type = crate::ContentType::Json; }
        item.trace_parent = trace;
        let fields = CdcEncoder::new().encode_put(&item);
        let decoded = CdcDecoder::default()
            .decode(ID, fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
            .unwrap();
        prop_assert_eq!(decoded, CdcEvent::Put(item));
    }

    #[test]
    fn delete_round_trips(key in "[^\\x00]{1,20}") {
        let fields = encode::encode_delete(&key);
        prop_assert_eq!(fields.len(), 2);
        let decoded = CdcDecoder::default()
            .decode(ID, fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
            .unwrap();
        prop_assert_eq!(decoded, CdcEvent::Delete { key, stamp: None });
    }

    #[test]
    fn stamped_delete_round_trips(key in "[^\\x00]{1,20}", version in any::<u64>(), deleted_at in any::<i64>()) {
        let stamp = crate::Tombstone { version, deleted_at };
        let event = CdcEvent::Delete { key, stamp: Some(stamp) };
        let fields = CdcEncoder::new().encode(&event);
        prop_assert_eq!(fields.len(), 3);
        let decoded = CdcDecoder::default()
            .decode(ID, fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
            .unwrap();
        prop_assert_eq!(decoded, event);
    }

    #[test]
    fn arbitrary_fields_never_panic(fields in proptest::collection::vec(
        (prop_oneof![Just("op".to_string()), Just("key".to_string()), Just("hash".to_string()),
                     Just("data".to_string()), Just("meta".to_string()), "[a-z]{1,4}"],
         proptest::collection::vec(any::<u8>(), 0..80)), 0..7)) {
        let _ = CdcDecoder::default().decode(ID, fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())));
    }
}

#[test]
fn op_is_case_insensitive_and_delete_is_a_synonym() {
    for op in ["del", "DEL", "Delete", "DELETE"] {
        let event = decode(&[("op", op.into()), ("key", b"k".to_vec())]).unwrap();
        assert_eq!(
            event,
            CdcEvent::Delete {
                key: "k".into(),
                stamp: None
            }
        );
    }
    let mut fields = put_fields(b"x");
    replace(&mut fields, "op", b"pUt".to_vec());
    assert!(matches!(decode(&fields), Ok(CdcEvent::Put(_))));
}

#[test]
fn a_stamped_delete_is_written_in_the_documented_form() {
    let stamp = crate::Tombstone {
        version: 7,
        deleted_at: 1_700_000_000_000,
    };
    let fields = encode::encode_stamped_delete("a.b", &stamp);
    let names: Vec<_> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(names, ["op", "key", "meta"]);
    assert_eq!(
        fields[2].1,
        br#"{"version":7,"deleted_at":1700000000000}"#.to_vec()
    );
}

#[test]
fn a_delete_whose_stamp_does_not_parse_is_bad_input_naming_it() {
    for meta in [
        &b"{"[..],
        br#"{"version":"x","deleted_at":1}"#,
        br#"{"deleted_at":1}"#,
    ] {
        let fields = [
            ("op", b"DEL".to_vec()),
            ("key", b"k".to_vec()),
            ("meta", meta.to_vec()),
        ];
        let err = decode(&fields).unwrap_err();
        assert!(
            matches!(err.reason, RejectReason::InvalidMeta(_)),
            "{meta:?}: {err:?}"
        );
        assert_eq!(err.key.as_deref(), Some("k"));
    }
}

#[test]
fn missing_fields_are_named() {
    let full = put_fields(b"content");
    for name in ["op", "key", "hash", "data", "meta"] {
        let fields: Vec<_> = full.iter().filter(|(k, _)| *k != name).cloned().collect();
        let err = decode(&fields).unwrap_err();
        assert_eq!(err.reason, RejectReason::MissingField(field_name(name)));
        assert_eq!(err.entry_id, ID);
        assert!(err.to_string().contains(name), "{err}");
    }
}

fn field_name(name: &str) -> &'static str {
    match name {
        "op" => field::OP,
        "key" => field::KEY,
        "hash" => field::HASH,
        "data" => field::DATA,
        _ => field::META,
    }
}

#[test]
fn hash_mismatch_is_rejected() {
    let mut fields = put_fields(b"content");
    replace(&mut fields, "hash", content_hash_hex(b"other").into_bytes());
    assert!(matches!(
        reason(decode(&fields)),
        RejectReason::HashMismatch { .. }
    ));
}

#[test]
fn malformed_hash_is_rejected() {
    let mut fields = put_fields(b"content");
    replace(&mut fields, "hash", b"not-a-hash".to_vec());
    assert_eq!(reason(decode(&fields)), RejectReason::MalformedHash);
}

#[test]
fn non_utf8_key_is_rejected() {
    let mut fields = put_fields(b"content");
    replace(&mut fields, "key", vec![0xff, 0xfe]);
    assert_eq!(reason(decode(&fields)), RejectReason::NotUtf8("key"));
}

#[test]
fn empty_key_and_unknown_op_are_rejected() {
    assert_eq!(
        reason(decode(&[("op", b"DEL".to_vec()), ("key", vec![])])),
        RejectReason::EmptyKey
    );
    let err = decode(&[("op", b"MERGE".to_vec()), ("key", b"k".to_vec())]).unwrap_err();
    assert_eq!(err.reason, RejectReason::UnknownOp("MERGE".into()));
    assert_eq!(err.key.as_deref(), Some("k"));
}

#[test]
fn invalid_meta_is_rejected() {
    for meta in [
        &b"{"[..],
        b"[]",
        b"{\"version\":1}",
        b"{\"updated_at\":1}",
        b"{\"version\":-1,\"updated_at\":1}",
    ] {
        let mut fields = put_fields(b"content");
        replace(&mut fields, "meta", meta.to_vec());
        assert!(
            matches!(reason(decode(&fields)), RejectReason::InvalidMeta(_)),
            "{meta:?}"
        );
    }
}

#[test]
fn unknown_meta_fields_are_ignored() {
    let mut fields = put_fields(b"content");
    replace(
        &mut fields,
        "meta",
        br#"{"content_type":"json","version":3,"updated_at":5,"origin":"node-x","extra":{"a":[1]}}"#.to_vec(),
    );
    let CdcEvent::Put(item) = decode(&fields).unwrap() else {
        panic!("expected a put")
    };
    assert_eq!(
        (item.version, item.updated_at, item.content_type),
        (3, 5, crate::ContentType::Json)
    );
}

#[test]
fn corrupted_zstd_is_rejected() {
    let content = vec![b'a'; 1000];
    let mut fields = put_fields(&content);
    let mut data = fields.iter().find(|(k, _)| *k == "data").unwrap().1.clone();
    assert!(
        is_zstd_frame(&data),
        "compressible content must travel compressed"
    );
    let mid = data.len() / 2;
    data[mid] ^= 0xff;
    data.truncate(data.len() - 2);
    replace(&mut fields, "data", data);
    assert!(matches!(
        reason(decode(&fields)),
        RejectReason::Undecodable(_) | RejectReason::HashMismatch { .. }
    ));
}

#[test]
fn bomb_over_the_cap_is_rejected_without_decompressing() {
    let content = vec![0u8; 4 * 1024 * 1024];
    let mut fields = put_fields(&content);
    // Small on the wire, large when opened.
    assert!(fields.iter().find(|(k, _)| *k == "data").unwrap().1.len() < 4096);
    replace(&mut fields, "hash", content_hash_hex(&content).into_bytes());
    let mut decoder = CdcDecoder::new(DecodeLimits {
        max_decompressed_bytes: 1024 * 1024,
        ..DecodeLimits::default()
    });
    let err = decoder
        .decode(ID, fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
        .unwrap_err();
    assert_eq!(err.reason, RejectReason::TooLarge { limit: 1024 * 1024 });
}

#[test]
fn raw_content_over_the_cap_is_rejected() {
    // Incompressible, so it travels raw: the cap must hold without any decompression.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let content: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let fields = put_fields(&content);
    assert!(!is_zstd_frame(
        &fields.iter().find(|(k, _)| *k == "data").unwrap().1
    ));
    let mut decoder = CdcDecoder::new(DecodeLimits {
        max_decompressed_bytes: 1024,
        ..DecodeLimits::default()
    });
    let err = decoder
        .decode(ID, fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
        .unwrap_err();
    assert_eq!(err.reason, RejectReason::TooLarge { limit: 1024 });
    // The same entry fits a cap of its size.
    let mut exact = CdcDecoder::new(DecodeLimits {
        max_decompressed_bytes: 4096,
        ..DecodeLimits::default()
    });
    assert!(exact
        .decode(ID, fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
        .is_ok());
}

#[test]
fn bomb_without_declared_size_is_bounded() {
    use std::io::Write;
    let content = vec![0u8; 2 * 1024 * 1024];
    // A streaming encoder does not write the content size into the frame header.
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    encoder.include_contentsize(false).unwrap();
    encoder.write_all(&content).unwrap();
    let data = encoder.finish().unwrap();
    assert_eq!(
        zstd::zstd_safe::get_frame_content_size(&data)
            .ok()
            .flatten(),
        None
    );
    let mut fields = put_fields(b"placeholder");
    replace(&mut fields, "data", data);
    replace(&mut fields, "hash", content_hash_hex(&content).into_bytes());
    let mut decoder = CdcDecoder::new(DecodeLimits {
        max_decompressed_bytes: 1024 * 1024,
        ..DecodeLimits::default()
    });
    let err = decoder
        .decode(ID, fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
        .unwrap_err();
    assert_eq!(err.reason, RejectReason::TooLarge { limit: 1024 * 1024 });
    // The same entry under a larger cap decodes.
    let mut roomy = CdcDecoder::new(DecodeLimits {
        max_decompressed_bytes: 4 * 1024 * 1024,
        ..DecodeLimits::default()
    });
    assert!(roomy
        .decode(ID, fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
        .is_ok());
}

#[test]
fn encoder_follows_the_compression_rules() {
    let mut enc = CdcEncoder::new();
    assert_eq!(enc.data(b"short"), b"short");
    let magic = [ZSTD_MAGIC.to_vec(), vec![b'x'; 500]].concat();
    assert_eq!(
        enc.data(&magic),
        magic,
        "magic-prefixed content travels raw"
    );
    let incompressible: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    assert_eq!(enc.data(&incompressible), incompressible);
    assert!(is_zstd_frame(&enc.data(&[b'z'; 500])));
}

#[test]
fn put_meta_is_written_in_wire_order() {
    let mut item = SyncItem::new("k", b"v".to_vec(), 1, 1_735_776_000_001);
    let fields = CdcEncoder::new().encode_put(&item);
    let names: Vec<_> = fields.iter().map(|(k, _)| *k).collect();
    assert_eq!(names, ["op", "key", "hash", "data", "meta"]);
    assert_eq!(
        fields[4].1,
        br#"{"content_type":"binary","version":1,"updated_at":1735776000001}"#
    );
    item.trace_parent = Some("00-abc-def-01".into());
    let fields = CdcEncoder::new().encode_put(&item);
    assert!(fields[4]
        .1
        .ends_with(br#","trace_parent":"00-abc-def-01"}"#));
}

/// The entries a real sync-engine 0.2.19 node wrote decode, and re-encode to the same bytes.
#[test]
fn sync_engine_fixture_entries_decode_and_re_encode() {
    use base64::Engine;
    for fixture in crate::test_fixtures::all() {
        let mut decoder = CdcDecoder::default();
        let mut encoder = CdcEncoder::new();
        let entries = fixture["cdc_stream"].as_array().expect("cdc_stream array");
        assert!(!entries.is_empty());
        let mut saw_compressed = false;
        for entry in entries {
            let id: StreamId = entry["id"].as_str().unwrap().parse().unwrap();
            let fields: Vec<(String, Vec<u8>)> = entry["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|pair| {
                    let name = pair[0].as_str().unwrap().to_owned();
                    let value = base64::engine::general_purpose::STANDARD
                        .decode(pair[1].as_str().unwrap())
                        .unwrap();
                    (name, value)
                })
                .collect();
            let event = decoder
                .decode(id, fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
                .unwrap_or_else(|e| panic!("fixture entry must decode: {e}"));
            let reencoded = encoder.encode(&event);
            let original: Vec<(&str, &[u8])> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            let ours: Vec<(&str, &[u8])> =
                reencoded.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            if original
                .iter()
                .any(|(k, v)| *k == "data" && is_zstd_frame(v))
            {
                saw_compressed = true;
                // zstd output may differ across library versions; compare all but `data`.
                assert_eq!(without_data(&original), without_data(&ours), "entry {id}");
            } else {
                assert_eq!(original, ours, "entry {id} must re-encode byte for byte");
            }
        }
        assert!(saw_compressed, "the fixture holds one compressed entry");
    }
}

fn without_data<'a>(fields: &[(&'a str, &'a [u8])]) -> Vec<(&'a str, &'a [u8])> {
    fields
        .iter()
        .filter(|(k, _)| *k != "data")
        .copied()
        .collect()
}

#[test]
fn keys_over_the_length_or_depth_limit_are_rejected_naming_the_limit() {
    for len in [16 * 1024, 100 * 1024] {
        // `a.a.a...`: long and deep, the shape that is costly downstream.
        let key = "a.".repeat(len / 2) + "a";
        let mut fields = put_fields(b"v");
        replace(&mut fields, "key", key.clone().into_bytes());
        let err = decode(&fields).unwrap_err();
        assert_eq!(
            err.reason,
            RejectReason::KeyOverLimit(crate::merkle::ObjectIdProblem::TooLong {
                bytes: key.len(),
                limit: 1024
            })
        );
        assert_eq!(err.reason.label(), "key_too_long");
        assert!(err.to_string().contains("max_object_id_bytes"), "{err}");
        assert!(err.key.as_ref().is_some_and(|k| k.len() < 200), "{err:?}");
        // Deletes carry keys too.
        let del = [("op", b"DEL".to_vec()), ("key", key.into_bytes())];
        assert_eq!(decode(&del).unwrap_err().reason.label(), "key_too_long");
    }
    let deep = vec!["s"; 40].join(".");
    let mut fields = put_fields(b"v");
    replace(&mut fields, "key", deep.into_bytes());
    assert_eq!(
        reason(decode(&fields)),
        RejectReason::KeyOverLimit(crate::merkle::ObjectIdProblem::TooDeep { limit: 32 })
    );
    // Within both limits, however deep: decoded.
    let within = vec!["s"; 32].join(".");
    let mut fields = put_fields(b"v");
    replace(&mut fields, "key", within.clone().into_bytes());
    assert_eq!(decode(&fields).unwrap().key(), within);
}

#[test]
fn an_entry_over_the_entry_cap_is_rejected_whatever_field_holds_the_bytes() {
    let limits = DecodeLimits {
        max_decompressed_bytes: 1024,
        ..DecodeLimits::default()
    };
    let cap = limits.max_entry_bytes();
    assert_eq!(cap, 1024 + DecodeLimits::ENTRY_OVERHEAD_BYTES + 1024);
    // The data is within the content cap; the meta is not within anything.
    let mut fields = put_fields(b"small");
    replace(&mut fields, "meta", vec![b' '; cap]);
    let as_slices: Vec<(&[u8], &[u8])> = fields
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_slice()))
        .collect();
    let early = limits.check_entry_size(ID, &as_slices).unwrap_err();
    assert!(
        matches!(early.reason, RejectReason::EntryTooLarge { limit, .. } if limit == cap),
        "{early}"
    );
    assert_eq!(early.key.as_deref(), Some("uk.a.b"));
    assert_eq!(early.reason.label(), "too_large");
    let decoded = CdcDecoder::new(limits).decode(ID, as_slices).unwrap_err();
    assert_eq!(
        decoded, early,
        "the reader's early check and the decoder agree"
    );
    // An ordinary entry passes the early check.
    let fine = put_fields(b"small");
    let fine: Vec<(&[u8], &[u8])> = fine
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_slice()))
        .collect();
    assert!(limits.check_entry_size(ID, &fine).is_ok());
}
