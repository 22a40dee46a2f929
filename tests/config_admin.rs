//! Black-box tests of the config admin surface on a real node: v3 (client, admin, console)
//! endpoints, v1 search, v2 history, and ZIP export → delete → import with each policy and
//! with hostile archives.

mod common;

use std::io::Write;

use common::client;
use common::Node;
use common::Ports;
use serde_json::Value;

const ADMIN: &str = "/nacos/v3/admin/cs/config";

async fn start(root: &std::path::Path) -> Node {
    let mut n = Node::new(root, "solo", Ports::new(), &[]);
    n.set_env("BATATA_CONFIG_MAX_CONTENT_BYTES", "4096");
    n.start();
    common::wait_ready(&n).await;
    n
}

async fn json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
}

async fn publish(n: &Node, data_id: &str, group: &str, content: &str, extra: &[(&str, &str)]) {
    let mut form = vec![("dataId", data_id), ("groupName", group), ("content", content)];
    form.extend_from_slice(extra);
    let (s, v) = json(client().post(n.url(ADMIN)).form(&form).send().await.unwrap()).await;
    assert_eq!((s, &v["code"], &v["data"]), (200, &Value::from(0), &Value::Bool(true)), "{v}");
}

async fn detail(n: &Node, data_id: &str, group: &str) -> Option<Value> {
    let url = n.url(&format!("{ADMIN}?dataId={data_id}&groupName={group}&namespaceId=public"));
    let (s, v) = json(client().get(url).send().await.unwrap()).await;
    match s {
        200 => Some(v["data"].clone()),
        404 => {
            assert_eq!(v["code"], 20004, "{v}");
            None
        }
        _ => panic!("detail {data_id}: {s} {v}"),
    }
}

async fn delete(n: &Node, data_id: &str, group: &str) {
    let url = n.url(&format!("{ADMIN}?dataId={data_id}&groupName={group}"));
    let (s, _) = json(client().delete(url).send().await.unwrap()).await;
    assert_eq!(s, 200);
}

async fn export(n: &Node, query: &str) -> Vec<u8> {
    let r = client().get(n.url(&format!("/nacos/v3/console/cs/config/export?{query}"))).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    r.bytes().await.unwrap().to_vec()
}

async fn import(n: &Node, policy: &str, zip: &[u8]) -> (u16, Value) {
    let boundary = "batata-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.zip\"\r\n\
         Content-Type: application/zip\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(zip);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let url = n.url(&format!("/nacos/v3/console/cs/config/import?namespaceId=public&policy={policy}"));
    let r = client()
        .post(url)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    json(r).await
}

fn entry_names(zip: &[u8]) -> Vec<String> {
    let mut a = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    (0..a.len()).map(|i| a.by_index(i).unwrap().name().unwrap().to_string()).collect()
}

/// The fields an import must reproduce (times are stamped anew by the leader, as in Nacos).
fn essence(v: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for k in ["dataId", "groupName", "namespaceId", "content", "md5", "type", "appName", "desc", "configTags"] {
        out.insert(k.into(), v[k].clone());
    }
    Value::Object(out)
}

#[tokio::test]
async fn v3_endpoints_search_and_history() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    publish(
        &n,
        "a.yaml",
        "G1",
        "a: 1",
        &[("type", "yaml"), ("appName", "app1"), ("desc", "d"), ("configTags", "t1,t2")],
    )
    .await;
    publish(&n, "b.properties", "G1", "b=1", &[]).await;
    publish(&n, "c.json", "G2", "{}", &[("type", "json")]).await;

    let d = detail(&n, "a.yaml", "G1").await.expect("a.yaml exists");
    assert_eq!(
        essence(&d),
        serde_json::json!({"dataId": "a.yaml", "groupName": "G1", "namespaceId": "public", "content": "a: 1",
            "md5": format!("{:x}", md5::compute("a: 1")), "type": "yaml", "appName": "app1", "desc": "d",
            "configTags": "t1,t2"})
    );
    assert!(d["createTime"].as_u64().unwrap() > 0 && d["modifyTime"].as_u64() >= d["createTime"].as_u64());

    // v1 `show=all`: every field.
    let url = n.url("/nacos/v1/cs/configs?show=all&dataId=a.yaml&group=G1");
    let (s, v) = json(client().get(url).send().await.unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(
        (&v["appName"], &v["desc"], &v["configTags"], &v["type"]),
        (&"app1".into(), &"d".into(), &"t1,t2".into(), &"yaml".into())
    );
    assert_eq!((&v["tenant"], &v["content"]), (&"public".into(), &"a: 1".into()));

    // The client read carries a ConfigQueryResponse-shaped object.
    let (s, v) =
        json(client().get(n.url("/nacos/v3/client/cs/config?dataId=c.json&groupName=G2")).send().await.unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(
        (&v["data"]["content"], &v["data"]["contentType"], &v["data"]["beta"]),
        (&"{}".into(), &"json".into(), &false.into())
    );
    let (s, v) =
        json(client().get(n.url("/nacos/v3/client/cs/config?dataId=zz&groupName=G2")).send().await.unwrap()).await;
    assert_eq!((s, &v["code"]), (404, &Value::from(20004)));
    let (s, v) = json(client().get(n.url("/nacos/v3/client/cs/config?dataId=zz")).send().await.unwrap()).await;
    assert_eq!((s, &v["code"]), (400, &Value::from(20002)), "groupName is required: {v}");

    // Search: blur with '*', exact names otherwise, paging.
    let list = |q: &str| n.url(&format!("{ADMIN}/list?namespaceId=public&{q}"));
    let (_, v) = json(client().get(list("search=blur&dataId=*.yaml")).send().await.unwrap()).await;
    assert_eq!(v["data"]["totalCount"], 1, "{v}");
    let (_, v) = json(client().get(list("search=accurate&dataId=a")).send().await.unwrap()).await;
    assert_eq!(v["data"]["totalCount"], 0, "accurate search matches whole names: {v}");
    let (_, v) = json(client().get(list("groupName=G1&pageNo=2&pageSize=1")).send().await.unwrap()).await;
    assert_eq!((&v["data"]["totalCount"], &v["data"]["pagesAvailable"]), (&Value::from(2), &Value::from(2)));
    assert_eq!(v["data"]["pageItems"][0]["dataId"], "b.properties");
    let (_, v) = json(client().get(list("configTags=t2")).send().await.unwrap()).await;
    assert_eq!(v["data"]["totalCount"], 1);

    // v1 search shape.
    let url = n.url("/nacos/v1/cs/configs?search=accurate&dataId=&group=G1&pageNo=1&pageSize=10&tenant=");
    let (_, v) = json(client().get(url).send().await.unwrap()).await;
    assert_eq!(v["totalCount"], 2, "{v}");
    assert_eq!((&v["pageItems"][0]["group"], &v["pageItems"][0]["tenant"]), (&"G1".into(), &"public".into()));

    // v2 and v3 history in the envelope.
    publish(&n, "a.yaml", "G1", "a: 2", &[]).await;
    let (_, v) = json(
        client().get(n.url("/nacos/v2/cs/history/list?dataId=a.yaml&group=G1&namespaceId=")).send().await.unwrap(),
    )
    .await;
    assert_eq!((&v["code"], &v["data"]["totalCount"]), (&Value::from(0), &Value::from(2)), "{v}");
    let newest = v["data"]["pageItems"][0]["id"].as_str().unwrap().to_string();
    let url = n.url(&format!("/nacos/v3/admin/cs/history/previous?dataId=a.yaml&groupName=G1&id={newest}"));
    let (_, v) = json(client().get(url).send().await.unwrap()).await;
    assert_eq!(v["data"]["content"], "a: 1", "{v}");
}

#[tokio::test]
async fn export_delete_import_round_trip_and_policies() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    let extra = [("type", "yaml"), ("appName", "app1"), ("desc", "描述"), ("configTags", "env:prod,team:x")];
    publish(&n, "a.yaml", "G1", "a: 配置", &extra).await;
    publish(&n, "b.properties", "G1", "b=1", &[("appName", "app2")]).await;
    publish(&n, "c.json", "G2", "{\"c\":1}", &[("type", "json")]).await;
    let keys = [("a.yaml", "G1"), ("b.properties", "G1"), ("c.json", "G2")];
    let mut before = Vec::new();
    for (d, g) in keys {
        before.push(essence(&detail(&n, d, g).await.unwrap()));
    }

    // Filters.
    assert_eq!(entry_names(&export(&n, "namespaceId=public&group=G2").await), ["G2/c.json", "G2/c.json.meta"]);
    assert_eq!(entry_names(&export(&n, "namespaceId=public&appName=app2").await).len(), 2);
    assert_eq!(entry_names(&export(&n, "namespaceId=public&dataIds=a.yaml,c.json").await).len(), 4);
    let all = export(&n, "namespaceId=public").await;
    assert_eq!(entry_names(&all).len(), 6);

    // Delete all, import: every field comes back.
    for (d, g) in keys {
        delete(&n, d, g).await;
        assert!(detail(&n, d, g).await.is_none());
    }
    let (s, v) = import(&n, "SKIP", &all).await;
    assert_eq!(
        (s, &v["data"]["successCount"], &v["data"]["failCount"]),
        (200, &Value::from(3), &Value::from(0)),
        "{v}"
    );
    for ((d, g), want) in keys.iter().zip(&before) {
        assert_eq!(&essence(&detail(&n, d, g).await.unwrap()), want);
    }

    // SKIP keeps what exists; OVERWRITE replaces it; ABORT writes nothing when anything exists.
    publish(&n, "a.yaml", "G1", "changed", &[]).await;
    let (_, v) = import(&n, "SKIP", &all).await;
    assert_eq!((&v["data"]["successCount"], &v["data"]["skipCount"]), (&Value::from(0), &Value::from(3)), "{v}");
    assert_eq!(detail(&n, "a.yaml", "G1").await.unwrap()["content"], "changed");
    delete(&n, "c.json", "G2").await;
    let (_, v) = import(&n, "ABORT", &all).await;
    assert_eq!((&v["data"]["successCount"], &v["data"]["failCount"]), (&Value::from(0), &Value::from(2)), "{v}");
    assert!(detail(&n, "c.json", "G2").await.is_none(), "ABORT imported nothing");
    let (_, v) = import(&n, "OVERWRITE", &all).await;
    assert_eq!(v["data"]["successCount"], 3, "{v}");
    assert_eq!(detail(&n, "a.yaml", "G1").await.unwrap()["content"], "a: 配置");
    let (s, v) = import(&n, "SOMETIMES", &all).await;
    assert_eq!((s, &v["code"]), (400, &Value::from(20002)));
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

#[tokio::test]
async fn hostile_imports_are_refused_and_store_nothing() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    let count = |n: &Node| {
        let url = n.url(&format!("{ADMIN}/list?namespaceId=public"));
        async move { json(client().get(url).send().await.unwrap()).await.1["data"]["totalCount"].as_u64().unwrap() }
    };

    let (s, v) = import(&n, "SKIP", b"this is not a zip").await;
    assert_eq!((s, &v["code"]), (400, &Value::from(20002)), "{v}");

    // zip-slip and odd paths: reported per entry, never stored.
    let slip = zip_of(&[("../evil/x.yaml", b"a: 1"), ("/abs/y.yaml", b"a: 1"), ("G/bad name!", b"x")]);
    let (s, v) = import(&n, "SKIP", &slip).await;
    assert_eq!(
        (s, &v["data"]["successCount"], &v["data"]["failCount"]),
        (200, &Value::from(0), &Value::from(3)),
        "{v}"
    );

    // A bomb: 1 MiB of zeros compresses to a few KB but exceeds the 4 KiB content limit.
    let bomb = zip_of(&[("G/bomb.txt", &vec![0u8; 1 << 20])]);
    assert!(bomb.len() < 16 * 1024);
    let (s, v) = import(&n, "SKIP", &bomb).await;
    assert_eq!((s, &v["code"]), (400, &Value::from(20002)), "{v}");

    // A multipart body without the file field.
    let r = client().post(n.url("/nacos/v3/console/cs/config/import")).body("x").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(count(&n).await, 0, "nothing was stored");
}

#[tokio::test]
async fn namespaces_in_the_v2_and_v3_envelope() {
    let root = tempfile::tempdir().unwrap();
    let n = start(root.path()).await;
    let form = [("customNamespaceId", "dev"), ("namespaceName", "Dev"), ("namespaceDesc", "d")];
    let (s, v) = json(client().post(n.url("/nacos/v3/admin/core/namespace")).form(&form).send().await.unwrap()).await;
    assert_eq!((s, &v["data"]), (200, &Value::Bool(true)), "{v}");
    let (s, v) = json(client().post(n.url("/nacos/v2/console/namespace")).form(&form).send().await.unwrap()).await;
    assert_eq!((s, &v["code"]), (409, &Value::from(20005)), "a duplicate id is a conflict: {v}");
    let (_, v) =
        json(client().get(n.url("/nacos/v3/console/core/namespace/exist?customNamespaceId=dev")).send().await.unwrap())
            .await;
    assert_eq!(v["data"], true);
    let upd = [("namespaceId", "dev"), ("namespaceName", "Development"), ("namespaceDesc", "d2")];
    let (s, _) = json(client().put(n.url("/nacos/v2/console/namespace")).form(&upd).send().await.unwrap()).await;
    assert_eq!(s, 200);
    let (_, v) = json(client().get(n.url("/nacos/v2/console/namespace/list")).send().await.unwrap()).await;
    let dev = v["data"].as_array().unwrap().iter().find(|x| x["namespace"] == "dev").cloned().expect("dev listed");
    assert_eq!((&dev["namespaceShowName"], &dev["namespaceDesc"]), (&"Development".into(), &"d2".into()));
    assert!(v["data"].as_array().unwrap().iter().any(|x| x["namespace"] == "public"), "public is always listed: {v}");
    let (s, _) =
        json(client().delete(n.url("/nacos/v3/admin/core/namespace?namespaceId=dev")).send().await.unwrap()).await;
    assert_eq!(s, 200);
    let (s, v) =
        json(client().get(n.url("/nacos/v3/admin/core/namespace?namespaceId=dev")).send().await.unwrap()).await;
    assert_eq!((s, &v["code"]), (404, &Value::from(20004)), "{v}");
}
