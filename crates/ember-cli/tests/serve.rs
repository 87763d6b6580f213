//! `ember serve` end to end: the real server on a free loopback port, driven over HTTP —
//! every endpoint and model kind, batching equal to single predictions, hot reload, graceful
//! shutdown, auth, limits, and hostile requests that must never get a 5xx.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::server::{raw, Reply, Server};
use common::{ok, ok_with_stdin, repo_root, Scratch};
use serde_json::{json, Value};

/// Models trained once for every test here.
struct Models {
    dir: PathBuf,
    mnist: String,
    /// Another MNIST model (other seed, one epoch): what a reload swaps in.
    mnist_other: String,
    titanic: Option<String>,
    faq: Option<String>,
    encoder: Option<PathBuf>,
    /// ALS on MovieLens 100K, with titles: `movies`.
    recommender: Option<String>,
}

fn models() -> &'static Models {
    static MODELS: OnceLock<Models> = OnceLock::new();
    MODELS.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("ember-test-serve-models-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str| dir.join(name).display().to_string();
        let (mnist, mnist_other) = (file("mnist.safetensors"), file("other.safetensors"));
        ok(&[
            "train",
            "models/mnist-mlp.toml",
            "--epochs",
            "2",
            "--output",
            &mnist,
        ]);
        ok(&[
            "train",
            "models/mnist-mlp.toml",
            "--epochs",
            "1",
            "--seed",
            "7",
            "--output",
            &mnist_other,
        ]);
        let titanic = common::data_dir().map(|data| {
            let out = file("titanic.safetensors");
            let csv = data.join("titanic/titanic.csv").display().to_string();
            ok(&[
                "train", "--csv", &csv, "--target", "Survived", "--output", &out,
            ]);
            out
        });
        let encoder = common::encoder_dir();
        let faq = encoder.as_ref().map(|enc| {
            let out = file("faq.index");
            ok(&[
                "index",
                "--encoder",
                &enc.display().to_string(),
                "data/faq/ember-faq.csv",
                "--output",
                &out,
            ]);
            out
        });
        let recommender = common::movielens_als(file("movies.rec"));
        Models {
            dir,
            mnist,
            mnist_other,
            titanic,
            faq,
            encoder,
            recommender,
        }
    })
}

/// The first `n` MNIST test images, raw pixels 0–255.
fn test_images(n: usize) -> Vec<Vec<u8>> {
    let images = ember::read_idx(repo_root().join("data/mnist/t10k-images-idx3-ubyte.gz")).unwrap();
    images.data()[..n * 784]
        .chunks(784)
        .map(|c| c.iter().map(|&v| v as u8).collect())
        .collect()
}

fn png_of(image: &[u8], path: &Path) -> Vec<u8> {
    let pixels = ember::Tensor::new(&[28, 28], image.iter().map(|&v| v as f32).collect()).unwrap();
    ember::data::image::save_png(path, &pixels).unwrap();
    std::fs::read(path).unwrap()
}

fn start(scratch: &Scratch, args: &[&str]) -> Server {
    Server::start(args, &[], &scratch.path().join("server.log"))
}

/// (label, top scores) of each prediction of a `:predict` answer.
fn labels_and_scores(reply: &Reply) -> Vec<(String, Vec<f32>)> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let top = p["top"].as_array().unwrap();
            (
                p["label"].as_str().unwrap().to_string(),
                top.iter()
                    .map(|t| t["score"].as_f64().unwrap() as f32)
                    .collect(),
            )
        })
        .collect()
}

/// The same labels, and scores equal to 1e-6: `ember predict` multiplies a single image by
/// gemm's one-row path, the server always by its batch path (see batching's test).
fn assert_close(got: &[(String, Vec<f32>)], want: &[(String, Vec<f32>)]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.0, w.0, "labels");
        assert_eq!(g.1.len(), w.1.len());
        for (a, b) in g.1.iter().zip(&w.1) {
            assert!((a - b).abs() < 1e-6, "scores {:?} and {:?}", g.1, w.1);
        }
    }
}

/// A server's prediction `got` is `ember predict --json`'s `want` without the keys that say
/// where its input was (`input`, `sample`, `line`): the same keys, labels and indexes, and
/// scores equal to 1e-6 (see [`assert_close`]).
fn assert_same_prediction(got: &Value, want: &Value) {
    let mut want = want.clone();
    for key in ["input", "sample", "line"] {
        want.as_object_mut().unwrap().remove(key);
    }
    fn same(got: &Value, want: &Value, at: &str) {
        match (got, want) {
            (Value::Object(g), Value::Object(w)) => {
                let keys = |m: &serde_json::Map<String, Value>| {
                    let mut k: Vec<String> = m.keys().cloned().collect();
                    k.sort();
                    k
                };
                assert_eq!(keys(g), keys(w), "keys at {at}");
                for (k, v) in w {
                    same(&g[k], v, &format!("{at}.{k}"));
                }
            }
            (Value::Array(g), Value::Array(w)) => {
                assert_eq!(g.len(), w.len(), "length at {at}");
                for (i, (a, b)) in g.iter().zip(w).enumerate() {
                    same(a, b, &format!("{at}[{i}]"));
                }
            }
            (Value::Number(a), Value::Number(b)) if a.is_f64() || b.is_f64() => {
                let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
                assert!((a - b).abs() < 1e-6, "{a} and {b} at {at}");
            }
            _ => assert_eq!(got, want, "at {at}"),
        }
    }
    same(got, &want, "prediction");
}

#[test]
fn the_server_and_ember_predict_json_give_one_object_for_one_digit() {
    let m = models();
    let scratch = Scratch::new("serve-same-object");
    let image = &test_images(1)[0];
    let png = scratch.path().join("digit.png");
    let bytes = png_of(image, &png);
    let cli: Value = serde_json::from_str(&ok(&[
        "predict",
        &m.mnist,
        &png.display().to_string(),
        "--json",
    ]))
    .unwrap();
    let cli = &cli[0];
    assert_eq!(cli["input"], png.display().to_string());
    assert_eq!(cli["sample"], 0);
    // A model whose classes are the digits without names: the label is the digit, as text,
    // beside its index.
    assert_eq!((&cli["label"], &cli["index"]), (&json!("7"), &json!(7)));
    assert_eq!(cli["top"][0]["label"], "7");
    assert_eq!(cli["top"][0]["index"], 7);
    assert_eq!(cli["score"], cli["top"][0]["score"]);
    let server = start(&scratch, &[&m.mnist]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    for body in [
        json!({"instances": [{"b64": b64}]}),
        json!({"instances": [image]}),
    ] {
        let reply = server.post("/v1/models/mnist:predict", &body);
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_same_prediction(&reply.json()["predictions"][0], cli);
    }
}

#[test]
fn every_endpoint_answers_for_a_network_as_ember_predict_does() {
    let m = models();
    let scratch = Scratch::new("serve-network");
    let server = start(&scratch, &[&m.mnist]);
    assert_eq!(server.get("/v2/health/live").json()["live"], true);
    assert_eq!(server.get("/v2/health/ready").json()["ready"], true);
    assert_eq!(server.get("/v2").json()["name"], "ember");
    assert_eq!(server.get("/v2/models/mnist/ready").json()["ready"], true);
    let meta = server.get("/v2/models/mnist").json();
    assert_eq!(
        meta["inputs"][0],
        json!({"name": "input", "datatype": "FP32", "shape": [-1, 784]})
    );
    assert_eq!(meta["outputs"][0]["shape"], json!([-1, 10]));
    assert_eq!(
        server.get("/v2/models/mnist/versions/1").json()["name"],
        "mnist"
    );
    assert_eq!(server.get("/v2/models/mnist/versions/2").status, 404);
    let list = server.get("/v1/models").json();
    assert_eq!(list["data"][0]["kind"], "network");
    assert_eq!(
        list["data"][0]["input"]["image"],
        json!({"height": 28, "width": 28, "channels": 1})
    );
    assert!(list["data"][0]["summary"]
        .as_str()
        .unwrap()
        .contains("dense_1"));
    assert_eq!(
        server.get("/v1/models/mnist").json()["model_version_status"][0]["state"],
        "AVAILABLE"
    );

    // The reference: `ember predict --json` on the same images as PNG files.
    let images = test_images(4);
    let mut files = Vec::new();
    let mut b64 = Vec::new();
    for (i, image) in images.iter().enumerate() {
        let path = scratch.path().join(format!("digit{i}.png"));
        b64.push(base64::engine::general_purpose::STANDARD.encode(png_of(image, &path)));
        files.push(path.display().to_string());
    }
    let mut args = vec!["predict", m.mnist.as_str(), "--json"];
    args.extend(files.iter().map(String::as_str));
    let expected: Vec<(String, Vec<f32>)> = serde_json::from_str::<Value>(&ok(&args))
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let top = p["top"].as_array().unwrap();
            (
                p["label"].as_str().unwrap().to_string(),
                top.iter()
                    .map(|t| t["score"].as_f64().unwrap() as f32)
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        expected.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        ["7", "2", "1", "0"]
    );

    // Raw pixels as arrays, flat or nested, and images as base64 PNG: the same answers.
    for (i, image) in images.iter().enumerate() {
        let flat = server.post("/v1/models/mnist:predict", &json!({"instances": [image]}));
        assert_close(&labels_and_scores(&flat), &expected[i..=i]);
        let nested: Vec<&[u8]> = image.chunks(28).collect();
        let nested = server.post("/v1/models/mnist:predict", &json!({"instances": [nested]}));
        assert_close(&labels_and_scores(&nested), &expected[i..=i]);
        let png = server.post(
            "/v1/models/mnist:predict",
            &json!({"instances": [{"b64": b64[i]}]}),
        );
        assert_close(&labels_and_scores(&png), &expected[i..=i]);
    }
    let all = server.post(
        "/v1/models/mnist:predict",
        &json!({"instances": images, "top_k": 10}),
    );
    let all = labels_and_scores(&all);
    assert_eq!(all.len(), 4);
    assert_eq!(all[0].1.len(), 10, "top_k: every class");

    // KServe v2 takes the scaled input (pixels / 255) and gives the softmax outputs.
    let scaled: Vec<f32> = images[0].iter().map(|&v| v as f32 / 255.0).collect();
    let infer = server.post(
        "/v2/models/mnist/infer",
        &json!({"id": "a1", "inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32", "data": scaled}]}),
    );
    assert_eq!(infer.status, 200, "{}", infer.text());
    let out = infer.json();
    assert_eq!(
        (out["id"].as_str(), out["model_name"].as_str()),
        (Some("a1"), Some("mnist"))
    );
    assert_eq!(out["outputs"][0]["shape"], json!([1, 10]));
    let probabilities: Vec<f32> = out["outputs"][0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    assert!(
        (probabilities[7] - expected[0].1[0]).abs() < 1e-6,
        "the probability predict gives"
    );
    // UINT8 data is taken as numbers too (here already divided: zeros and ones).
    let ones: Vec<u8> = images[0].iter().map(|&v| (v > 127) as u8).collect();
    let uint8 = server.post(
        "/v2/models/mnist/infer",
        &json!({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "UINT8", "data": ones}]}),
    );
    assert_eq!(uint8.status, 200, "{}", uint8.text());

    // Errors in the protocol's shape, whose message tritonclient shows.
    let wrong = server.post(
        "/v2/models/mnist/infer",
        &json!({"inputs": [{"name": "input", "shape": [1, 783], "datatype": "FP32", "data": vec![0.0; 783]}]}),
    );
    assert_eq!(
        (wrong.status, wrong.error_code().as_str()),
        (400, "invalid_input")
    );
    assert_eq!(
        wrong.json()["error"],
        "inputs[0].shape: [1, 783], the model takes [n, 784]"
    );
    let far = server.post(
        "/v2/models/mnist/infer",
        &json!({"inputs": [{"name": "input", "shape": [1, 784], "datatype": "UINT8", "data": images[0]}]}),
    );
    assert!(
        far.json()["error"]
            .as_str()
            .unwrap()
            .contains("far outside the values the model was trained on (0 to 1)"),
        "in the network's units: {}",
        far.text()
    );

    // The binary tensor extension, as tritonclient sends it: JSON, then little-endian data.
    let header = json!({
        "inputs": [{"name": "input", "shape": [1, 784], "datatype": "FP32", "parameters": {"binary_data_size": 784 * 4}}],
        "outputs": [{"name": "dense_1", "parameters": {"binary_data": true}}]
    })
    .to_string();
    let mut body = header.clone().into_bytes();
    body.extend(scaled.iter().flat_map(|v| v.to_le_bytes()));
    let length = header.len().to_string();
    let binary = server.request(
        "POST",
        "/v2/models/mnist/infer",
        &[
            ("Content-Type", "application/octet-stream"),
            ("Inference-Header-Content-Length", &length),
        ],
        &body,
    );
    assert_eq!(binary.status, 200, "{}", binary.text());
    let json_length: usize = binary
        .header("inference-header-content-length")
        .unwrap()
        .parse()
        .unwrap();
    let head: Value = serde_json::from_slice(&binary.body[..json_length]).unwrap();
    assert_eq!(head["outputs"][0]["parameters"]["binary_data_size"], 40);
    let values: Vec<f32> = binary.body[json_length..]
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(values, probabilities);

    // Metrics in the Prometheus exposition format, by route pattern.
    let metrics = server.get("/metrics");
    assert!(metrics
        .header("content-type")
        .unwrap()
        .contains("openmetrics-text"));
    let text = metrics.text();
    assert!(
        text.contains(r#"ember_http_requests_total{route="/v1/models/{target}",method="POST",status="200"} 13"#),
        "{text}"
    );
    assert!(
        text.contains("ember_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"ember_batch_rows_count{model="mnist"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"ember_queue_depth{model="mnist"} 0"#),
        "{text}"
    );
    // The playground is part of the binary.
    let page = server.get("/");
    assert!(page.text().contains("Ember playground"));
    assert!(server.get("/playground.js").text().contains("/v1/models"));
    // One JSON object per request in the log.
    let log = server.log_text();
    let request: Value =
        serde_json::from_str(log.lines().find(|l| l.contains("\"request\"")).unwrap()).unwrap();
    assert!(
        request["status"].is_u64() && request["ms"].is_f64() && request["time"].is_string(),
        "{request}"
    );
}

/// The first `n` rows of the Titanic file, as a CSV file in `scratch` and as the instances
/// of a request: numbers as JSON numbers, text as strings, empty cells as null.
fn titanic_rows(scratch: &Scratch, n: usize) -> (String, Vec<Value>) {
    let csv = common::data_dir().unwrap().join("titanic/titanic.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let head: String = text.lines().take(n + 1).collect::<Vec<_>>().join("\n") + "\n";
    let rows_file = scratch.write("rows.csv", &head);
    let mut reader = csv::Reader::from_reader(head.as_bytes());
    let names: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let instances = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let mut row = serde_json::Map::new();
            for (name, cell) in names.iter().zip(r.iter()) {
                let value = match cell.parse::<f64>() {
                    _ if cell.is_empty() => Value::Null,
                    Ok(v) => json!(v),
                    Err(_) => json!(cell),
                };
                row.insert(name.clone(), value);
            }
            Value::Object(row)
        })
        .collect();
    (rows_file, instances)
}

#[test]
fn a_table_model_takes_raw_rows_with_its_saved_preprocessing() {
    let m = models();
    let Some(titanic) = &m.titanic else { return };
    let scratch = Scratch::new("serve-table");
    let server = start(&scratch, &[titanic]);
    let schema = &server.get("/v1/models").json()["data"][0]["input"];
    assert_eq!(schema["type"], "table");
    assert_eq!(schema["task"], "binary");
    let sex = schema["columns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Sex")
        .unwrap();
    let mut categories: Vec<&str> = sex["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    categories.sort();
    assert_eq!(categories, ["female", "male"]);
    // The first rows of the file, as `ember predict` reads them.
    let (rows_file, instances) = titanic_rows(&scratch, 5);
    let expected: Value =
        serde_json::from_str(&ok(&["predict", titanic, &rows_file, "--json"])).unwrap();
    let answer = server.post(
        "/v1/models/titanic:predict",
        &json!({"instances": instances}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    for (got, want) in answer.json()["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(expected.as_array().unwrap())
    {
        assert_same_prediction(got, want);
    }
    // A decision threshold, as `ember predict --threshold` takes it.
    let expected: Value = serde_json::from_str(&ok(&[
        "predict",
        titanic,
        &rows_file,
        "--json",
        "--threshold",
        "0.2",
    ]))
    .unwrap();
    let answer = server.post(
        "/v1/models/titanic:predict",
        &json!({"instances": instances, "threshold": 0.2}),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    for (got, want) in answer.json()["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(expected.as_array().unwrap())
    {
        assert_same_prediction(got, want);
    }
    let bad = server.post(
        "/v1/models/titanic:predict",
        &json!({"instances": instances, "threshold": 1.5}),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("between 0 and 1"), "{}", bad.text());
    // A column the model does not know, and a number that is not one.
    let unknown = server.post(
        "/v1/models/titanic:predict",
        &json!({"instances": [{"Sx": "male"}]}),
    );
    assert_eq!(
        (unknown.status, unknown.error_code().as_str()),
        (400, "invalid_input")
    );
    assert!(
        unknown.text().contains("no column 'Sx'"),
        "{}",
        unknown.text()
    );
    let bad = server.post(
        "/v1/models/titanic:predict",
        &json!({"instances": [{"Age": "old"}]}),
    );
    assert!(bad.text().contains("instances[0].Age"), "{}", bad.text());
    // Every column missing: imputed, still an answer.
    let empty = server.post("/v1/models/titanic:predict", &json!({"instances": [{}]}));
    assert_eq!(empty.status, 200, "{}", empty.text());
}

#[test]
fn faq_and_embeddings_answer_as_ember_ask_and_embed_do() {
    let m = models();
    let (Some(faq), Some(encoder)) = (&m.faq, &m.encoder) else {
        return;
    };
    let scratch = Scratch::new("serve-text");
    let encoder = encoder.display().to_string();
    let server = start(&scratch, &[faq, &encoder]);
    let question = "how can I run the test suite?";
    let expected: Value =
        serde_json::from_str(&ok(&["ask", faq, question, "--json", "--top-k", "2"])).unwrap();
    let answer = server.post("/v1/faq/faq/ask", &json!({"query": question, "top_k": 2}));
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answers = answer.json()["answers"].clone();
    assert_eq!(answers[0]["question"], expected[0]["question"]);
    assert_eq!(answers[0]["question"], "How do I run the tests?");
    assert!(
        (answers[0]["score"].as_f64().unwrap() - expected[0]["score"].as_f64().unwrap()).abs()
            < 1e-5
    );

    // OpenAI's shape; floats, or base64 of little-endian f32s as the openai client asks.
    let texts = ["The cat sat on the mat.", "Refunds take five days."];
    let expected: Value = serde_json::from_str(&ok(&[
        "embed",
        "--encoder",
        &encoder,
        "--json",
        texts[0],
        texts[1],
    ]))
    .unwrap();
    let reply = server.post(
        "/v1/embeddings",
        &json!({"model": "all-minilm-l6-v2", "input": texts}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], "all-minilm-l6-v2");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() >= 10);
    for i in 0..2 {
        assert_eq!(body["data"][i]["object"], "embedding");
        assert_eq!(body["data"][i]["index"], i);
        let got: Vec<f64> = body["data"][i]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let want: Vec<f64> = expected[i]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(got.len(), 384);
        let worst = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-5, "embedding {i} differs by {worst}");
    }
    let b64 = server.post(
        "/v1/embeddings",
        &json!({"model": "all-minilm-l6-v2", "input": texts[0], "encoding_format": "base64"}),
    );
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.json()["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let first = body["data"][0]["embedding"][0].as_f64().unwrap() as f32;
    assert!((f32::from_le_bytes(bytes[..4].try_into().unwrap()) - first).abs() < 1e-6);
    assert_eq!(bytes.len(), 384 * 4);
    // The encoder through KServe v2: BYTES in, FP32 out.
    let v2 = server.post(
        "/v2/models/all-minilm-l6-v2/infer",
        &json!({"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [texts[0]]}]}),
    );
    assert_eq!(v2.json()["outputs"][0]["shape"], json!([1, 384]));
    // Wrong kinds are the client's mistake.
    let wrong = server.post("/v1/embeddings", &json!({"model": "faq", "input": "x"}));
    assert_eq!(wrong.status, 400);
    assert_eq!(
        server
            .post("/v1/faq/faq/ask", &json!({"query": "  "}))
            .status,
        400
    );
    assert_eq!(
        server
            .post("/v1/faq/nope/ask", &json!({"query": "x"}))
            .error_code(),
        "unknown_model"
    );
}

/// The FAQ bot over HTTP: `"llm"` names a served language model, and the reply and its
/// sources are `ember ask --llm --json`'s (the same job runs); an off-topic question gets
/// "I don't know"; a missing or wrong model, or bad settings, are clear 4xx.
#[test]
fn the_faq_bot_replies_over_http_as_ember_ask_llm_does() {
    let m = models();
    let (Some(faq), Some(model)) = (&m.faq, common::llm_model()) else {
        return;
    };
    let scratch = Scratch::new("serve-bot");
    let server = start(&scratch, &[faq, &model]);
    let llm = "SmolLM2-135M-Instruct.Q4_1";
    let question = "can I use my own pictures to train?";
    let cli: Value = serde_json::from_str(&ok(&[
        "ask",
        faq,
        question,
        "--llm",
        &model,
        "--top-k",
        "2",
        "--max-tokens",
        "32",
        "--json",
    ]))
    .unwrap();
    assert_eq!(cli["known"], true, "{cli}");
    let reply = server.post(
        "/v1/faq/faq/ask",
        &json!({"query": question, "top_k": 2, "llm": llm, "max_tokens": 32}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["known"], true, "{body}");
    assert_eq!(body["generated_by"], llm);
    assert!(!body["reply"].as_str().unwrap().is_empty(), "{body}");
    assert_eq!(
        body["reply"], cli["reply"],
        "the server runs `ember ask`'s job"
    );
    let questions = |entries: &Value| -> Vec<String> {
        entries
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["question"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(questions(&body["answers"]), questions(&cli["entries"]));
    assert_eq!(
        questions(&body["answers"])[0],
        "How do I train on my own folder of images?"
    );
    let usage = &body["usage"];
    let completion = usage["completion_tokens"].as_u64().unwrap();
    assert!((1..=32).contains(&completion), "{usage}");
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(usage["prompt_tokens"].as_u64().unwrap() + completion)
    );
    // Streamed: the sources, the reply's pieces, then the whole answer, then [DONE].
    let events = sse_events(&server.post(
        "/v1/faq/faq/ask",
        &json!({"query": question, "top_k": 2, "llm": llm, "max_tokens": 32, "stream": true}),
    ));
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let pieces: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(
        pieces[0],
        json!({"answers": body["answers"]}),
        "the sources first"
    );
    let deltas: String = pieces[1..pieces.len() - 1]
        .iter()
        .map(|p| p["delta"].as_str().unwrap())
        .collect();
    assert_eq!(
        deltas.trim(),
        body["reply"],
        "the pieces add up to the reply"
    );
    assert_eq!(
        pieces.last(),
        Some(&body),
        "the last event is the whole answer"
    );

    // Without "llm", the top_k entries alone, as before; the reply's sources are those
    // that reach min_score.
    let plain = server
        .post("/v1/faq/faq/ask", &json!({"query": question, "top_k": 2}))
        .json();
    assert!(plain.get("reply").is_none(), "{plain}");
    let entries = plain["answers"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{plain}");
    let sources: Vec<Value> = entries
        .iter()
        .filter(|e| e["score"].as_f64().unwrap() >= 0.5)
        .cloned()
        .collect();
    assert_eq!(questions(&json!(sources)), questions(&body["answers"]));

    let off_topic = "who won the football world cup in 2018?";
    let unknown = server
        .post("/v1/faq/faq/ask", &json!({"query": off_topic, "llm": llm}))
        .json();
    assert_eq!(unknown["known"], false, "{unknown}");
    assert_eq!(unknown["answers"], json!([]));
    assert!(unknown["reply"]
        .as_str()
        .unwrap()
        .starts_with("I don't know: no FAQ entry answers this question"));
    // Streamed, "I don't know" is the whole answer at once; without "llm", the entries.
    let events = sse_events(&server.post(
        "/v1/faq/faq/ask",
        &json!({"query": off_topic, "llm": llm, "stream": true}),
    ));
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(serde_json::from_str::<Value>(&events[0]).unwrap(), unknown);
    let events = sse_events(&server.post(
        "/v1/faq/faq/ask",
        &json!({"query": question, "top_k": 2, "stream": true}),
    ));
    assert_eq!(serde_json::from_str::<Value>(&events[0]).unwrap(), plain);
    assert_eq!(events[1], "[DONE]");

    for (bad, status, code, needle) in [
        (
            json!({"llm": "absent"}),
            404,
            "unknown_model",
            "llm: no model named 'absent'",
        ),
        (
            json!({"llm": "faq"}),
            400,
            "invalid_input",
            "not a language model",
        ),
        (
            json!({"llm": true}),
            400,
            "invalid_input",
            "llm: the name of a served language model",
        ),
        (
            json!({"llm": llm, "min_score": 2}),
            400,
            "invalid_input",
            "min_score",
        ),
        (
            json!({"llm": llm, "max_tokens": 0}),
            400,
            "invalid_input",
            "max_tokens",
        ),
        (
            json!({"llm": llm, "temperature": -1}),
            400,
            "invalid_input",
            "temperature",
        ),
    ] {
        let mut request = bad.clone();
        request["query"] = json!(question);
        let reply = server.post("/v1/faq/faq/ask", &request);
        assert_eq!(reply.status, status, "{bad}: {}", reply.text());
        assert_eq!(reply.error_code(), code, "{bad}");
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(needle), "{bad}: {message}");
    }
}

/// The data of a streamed answer's server-sent events, in order.
fn sse_events(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    reply
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_string))
        .collect()
}

/// A recommender over HTTP, served from a folder of `.rec` files: a user's top-k list, with
/// its reasons, and an item's closest items are `ember recommend top` and `similar`'s JSON; a
/// user the model does not know gets the popular items and the note; wrong requests are
/// clear 400s.
#[test]
fn a_recommender_answers_as_ember_recommend_top_and_similar_do() {
    let m = models();
    let Some(rec) = &m.recommender else { return };
    let scratch = Scratch::new("serve-recommend");
    let folder = scratch.path().join("served");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(rec, folder.join("movies.rec")).unwrap();
    let server = start(&scratch, &[&folder.display().to_string(), &m.mnist]);
    let listed = server.get("/v1/models").json();
    let movies = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "movies")
        .unwrap()
        .clone();
    assert_eq!(movies["kind"], "recommender");
    assert_eq!(
        movies["summary"],
        "als recommender: 943 users, 1682 items (titled), 16 factors; predicts ratings from 1 to 5"
    );
    assert_eq!(
        movies["input"],
        json!({"type": "recommender", "users": 943, "items": 1682, "similar_items": true})
    );
    let cli = |args: &[&str]| -> Value {
        let mut all = vec!["recommend"];
        all.extend_from_slice(args);
        all.push("--json");
        serde_json::from_str(&ok(&all)).unwrap()
    };
    let top = cli(&["top", rec, "--user", "196", "-k", "10"]);
    let reply = server.post("/v1/recommend/movies", &json!({"user": "196", "k": 10}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), top, "the list `ember recommend top` prints");
    assert_eq!(top["items"].as_array().unwrap().len(), 10);
    // An id may be a number; k is 10 unless given.
    assert_eq!(
        server
            .post("/v1/recommend/movies", &json!({"user": 196}))
            .json(),
        top
    );
    let explained = cli(&["top", rec, "--user", "196", "-k", "5", "--explain"]);
    let reply = server.post(
        "/v1/recommend/movies",
        &json!({"user": "196", "k": 5, "explain": true}),
    );
    assert_eq!(reply.json(), explained);
    assert!(
        explained["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.get("because").is_some()),
        "reasons: {explained}"
    );
    let stranger = server
        .post(
            "/v1/recommend/movies",
            &json!({"user": "someone-new", "k": 3}),
        )
        .json();
    assert_eq!(
        stranger,
        cli(&["top", rec, "--user", "someone-new", "-k", "3"])
    );
    assert!(stranger["fallback"]
        .as_str()
        .unwrap()
        .contains("is not in the training data: the most popular items"));
    let similar = cli(&["similar", rec, "--item", "50", "-k", "5"]);
    let reply = server.post("/v1/recommend/movies", &json!({"item": 50, "k": 5}));
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json(), json!({"item": "50", "items": similar}));

    for (bad, needle) in [
        (json!({}), "give \"user\""),
        (json!({"user": "1", "item": "2"}), "not both"),
        (
            json!({"user": "196", "k": 0}),
            "k must be a whole number from 1 to 10000",
        ),
        (
            json!({"item": "99999"}),
            "item '99999' is not in the model's 1682 items",
        ),
        (
            json!({"item": "50", "explain": true}),
            "explain: reasons are given for a user's list",
        ),
        (
            json!({"user": [196]}),
            "user: an id, as a string or a whole number, not an array",
        ),
    ] {
        let reply = server.post("/v1/recommend/movies", &bad);
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text());
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(needle), "{bad}: {message}");
    }
    let wrong = server.post("/v1/recommend/mnist", &json!({"user": "1"}));
    assert!(
        wrong.text().contains("not a recommender"),
        "{}",
        wrong.text()
    );
    let wrong = server.post("/v1/models/movies:predict", &json!({"instances": [1]}));
    assert_eq!(wrong.status, 400);
    assert!(
        wrong.text().contains("POST /v1/recommend/movies"),
        "{}",
        wrong.text()
    );
    assert_eq!(server.get("/v2/models/movies").status, 404);
}

/// Explanations over HTTP (`:explain`) are `ember explain --json`'s, input named
/// `instances`: an MNIST network by saliency on three raw images and by Integrated Gradients
/// on a PNG, a table model's rows per column; wrong methods, kinds and sizes are 4xx.
#[test]
fn explanations_answer_as_ember_explain_json_does() {
    let m = models();
    let scratch = Scratch::new("serve-explain");
    let mut paths = vec![m.mnist.as_str()];
    paths.extend(m.titanic.as_deref());
    paths.extend(m.faq.as_deref());
    let server = start(&scratch, &paths);
    let images = test_images(3);
    let rows: String = images
        .iter()
        .map(|image| {
            image
                .iter()
                .map(u8::to_string)
                .collect::<Vec<_>>()
                .join(",")
                + "\n"
        })
        .collect();
    let csv = scratch.write("three.csv", rows);
    let png = scratch.path().join("digit.png");
    let b64 = base64::engine::general_purpose::STANDARD.encode(png_of(&images[0], &png));
    let explain = |args: &[&str]| -> Value {
        let mut all = vec!["explain"];
        all.extend_from_slice(args);
        all.push("--json");
        serde_json::from_str(&ok(&all)).unwrap()
    };
    let cases = [
        (
            explain(&[&m.mnist, &csv, "--method", "saliency"]),
            json!({"instances": images, "method": "saliency"}),
        ),
        (
            explain(&[&m.mnist, &png.display().to_string(), "--steps", "32"]),
            json!({"instances": [{"b64": b64}], "steps": 32}),
        ),
    ];
    for (cli, request) in cases {
        let reply = server.post("/v1/models/mnist:explain", &request);
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_same_explanations(&reply.json(), &cli);
    }
    if let Some(titanic) = &m.titanic {
        let (rows_file, instances) = titanic_rows(&scratch, 4);
        for method in ["integrated-gradients", "shap"] {
            let cli = explain(&[titanic, &rows_file, "--method", method, "--target", "1"]);
            let reply = server.post(
                "/v1/models/titanic:explain",
                &json!({"instances": instances, "method": method, "target": 1}),
            );
            assert_eq!(reply.status, 200, "{}", reply.text());
            let body = reply.json();
            assert!(body["results"][0]["features"]
                .as_array()
                .unwrap()
                .contains(&json!("Sex")));
            assert_same_explanations(&body, &cli);
        }
    }
    let mut too_many = json!({"instances": vec![images[0].clone(); 65]});
    let reply = server.post("/v1/models/mnist:explain", &too_many);
    assert_eq!(
        (reply.status, reply.error_code().as_str()),
        (413, "too_many_instances")
    );
    too_many["instances"] = json!([images[0]]);
    for (name, bad, needle) in [
        (
            "mnist",
            json!({"method": "lime"}),
            "method: unknown method 'lime'",
        ),
        (
            "mnist",
            json!({"method": "permutation"}),
            "permutation importance needs labelled rows",
        ),
        (
            "mnist",
            json!({"target": "cat"}),
            "'cat' is not one of the model's classes",
        ),
        ("mnist", json!({"steps": 0}), "1 to 4096 steps"),
        // A setting the method does not use is refused, as `ember explain` refuses it.
        (
            "mnist",
            json!({"method": "saliency", "steps": 10}),
            "\"steps\" does nothing with \"method\": \"saliency\"",
        ),
        (
            "mnist",
            json!({"method": "smoothgrad", "layer": "conv2d"}),
            "\"layer\" does nothing with \"method\": \"smoothgrad\"",
        ),
        (
            "mnist",
            json!({"target": [1]}),
            "target: a class name or number",
        ),
        (
            "faq",
            json!({}),
            "'faq' is a faq model: :explain explains networks and table models",
        ),
    ] {
        if name == "faq" && m.faq.is_none() {
            continue;
        }
        let mut request = too_many.clone();
        for (k, v) in bad.as_object().unwrap() {
            request[k] = v.clone();
        }
        let reply = server.post(&format!("/v1/models/{name}:explain"), &request);
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text());
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(message.contains(needle), "{bad}: {message}");
        assert!(!message.contains(&m.mnist), "no file named: {message}");
    }
    let reply = server.post("/v1/models/mnist:nope", &too_many);
    assert_eq!(reply.status, 404);
    assert!(reply.text().contains("NAME:explain"), "{}", reply.text());
}

/// Explanations equal but for the input's name (`instances` over HTTP) and a table row's
/// file line: the same labels, targets and features, and the same numbers to 1e-6.
fn assert_same_explanations(got: &Value, want: &Value) {
    let (got, want) = (
        got["results"].as_array().unwrap(),
        want["results"].as_array().unwrap(),
    );
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g["input"], "instances");
        for key in ["label", "target", "sample", "features"] {
            assert_eq!(g.get(key), w.get(key), "{key}");
        }
        let numbers = |v: &Value| -> Vec<f64> {
            let mut all = vec![
                v["score"].as_f64().unwrap(),
                v["baseline_score"].as_f64().unwrap(),
            ];
            all.extend(
                v["attributions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_f64().unwrap()),
            );
            all
        };
        let (a, b) = (numbers(g), numbers(w));
        assert_eq!(a.len(), b.len());
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-6, "explanations differ by {worst}");
        let mut keys: Vec<&String> = g.as_object().unwrap().keys().collect();
        let mut expected: Vec<&String> = w
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| *k != "line")
            .collect();
        keys.sort();
        expected.sort();
        assert_eq!(keys, expected, "the fields of `ember explain --json`");
    }
}

/// No answer shows where the server's files are: summaries name an encoder by its folder's
/// name, and metadata, statuses and errors name models by their served names.
#[test]
fn no_response_names_the_servers_files() {
    let m = models();
    let scratch = Scratch::new("serve-paths");
    let mut paths = vec![m.mnist.clone()];
    paths.extend(m.titanic.clone());
    paths.extend(m.faq.clone());
    paths.extend(m.recommender.clone());
    paths.extend(m.encoder.as_ref().map(|e| e.display().to_string()));
    paths.extend(common::llm_model());
    let args: Vec<&str> = paths.iter().map(String::as_str).collect();
    let server = start(&scratch, &args);
    let listed = server.get("/v1/models").json();
    let names: Vec<String> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), paths.len());
    let mut bodies = vec![listed.to_string()];
    if m.faq.is_some() {
        let faq = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["kind"] == "faq")
            .unwrap();
        assert!(
            faq["summary"]
                .as_str()
                .unwrap()
                .ends_with("questions, embedded by all-minilm-l6-v2"),
            "{faq}"
        );
    }
    for name in &names {
        bodies.push(server.get(&format!("/v1/models/{name}")).text());
        bodies.push(server.get(&format!("/v2/models/{name}")).text());
        for (route, body) in [
            (
                format!("/v1/models/{name}:predict"),
                json!({"instances": [[1, 2]]}),
            ),
            (
                format!("/v1/models/{name}:explain"),
                json!({"instances": [[1, 2]]}),
            ),
            (format!("/v2/models/{name}/infer"), json!({"inputs": []})),
            (format!("/v1/faq/{name}/ask"), json!({"query": "?"})),
            (format!("/v1/recommend/{name}"), json!({"user": "x"})),
            (
                "/v1/embeddings".to_string(),
                json!({"model": name, "input": "x"}),
            ),
            (
                "/v1/chat/completions".to_string(),
                json!({"model": name, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}),
            ),
        ] {
            bodies.push(server.post(&route, &body).text());
        }
    }
    let mut places = vec![
        m.dir.display().to_string(),
        repo_root().display().to_string(),
        std::fs::canonicalize(repo_root())
            .unwrap()
            .display()
            .to_string(),
        std::env::temp_dir().display().to_string(),
    ];
    if let Some(data) = common::data_dir() {
        places.push(data.display().to_string());
        places.push(std::fs::canonicalize(data).unwrap().display().to_string());
    }
    for body in &bodies {
        for place in &places {
            assert!(!body.contains(place.as_str()), "{place} in {body}");
        }
    }
}

#[test]
fn concurrent_requests_are_batched_and_equal_single_predictions() {
    let m = models();
    let scratch = Scratch::new("serve-batch");
    // A long wait, so that the concurrent requests surely meet in batches.
    let server = start(
        &scratch,
        &[&m.mnist, "--max-wait-us", "20000", "--max-batch", "16"],
    );
    let images = test_images(32);
    let single: Vec<Vec<(String, Vec<f32>)>> = images
        .iter()
        .map(|image| {
            labels_and_scores(&server.post(
                "/v1/models/mnist:predict",
                &json!({"instances": [image], "top_k": 10}),
            ))
        })
        .collect();
    let before = batches(&server);
    assert_eq!(
        before,
        (32.0, 32.0),
        "one at a time: a batch of one row each"
    );
    let together: Vec<Vec<(String, Vec<f32>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = images
            .iter()
            .map(|image| {
                let server = &server;
                s.spawn(move || {
                    labels_and_scores(&server.post(
                        "/v1/models/mnist:predict",
                        &json!({"instances": [image], "top_k": 10}),
                    ))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        together, single,
        "batched predictions equal single ones exactly"
    );
    let (count, rows) = batches(&server);
    let (count, rows) = (count - before.0, rows - before.1);
    assert_eq!(rows, 32.0);
    assert!(
        count < 32.0,
        "32 concurrent requests ran in {count} batches: none merged"
    );
}

/// (batches run, rows in them) so far, from `/metrics`.
fn batches(server: &Server) -> (f64, f64) {
    let text = server.get("/metrics").text();
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (
        value(r#"ember_batch_rows_count{model="mnist"}"#),
        value(r#"ember_batch_rows_sum{model="mnist"}"#),
    )
}

#[test]
fn a_changed_file_is_reloaded_and_a_broken_one_keeps_the_old_model() {
    let m = models();
    let scratch = Scratch::new("serve-reload");
    let folder = scratch.path().join("models");
    std::fs::create_dir(&folder).unwrap();
    let served = folder.join("digits.safetensors");
    std::fs::copy(&m.mnist, &served).unwrap();
    let folder_arg = folder.display().to_string();
    let server = start(&scratch, &[&folder_arg, "--reload-ms", "50"]);
    let image = &test_images(1)[0];
    let ask = || {
        labels_and_scores(&server.post("/v1/models/digits:predict", &json!({"instances": [image]})))
    };
    let reference = |file: &str| {
        let png = scratch.path().join("d.png");
        png_of(image, &png);
        let p: Value = serde_json::from_str(&ok(&[
            "predict",
            file,
            &png.display().to_string(),
            "--json",
        ]))
        .unwrap();
        p[0]["top"][0]["score"].as_f64().unwrap() as f32
    };
    let (old_score, new_score) = (reference(&m.mnist), reference(&m.mnist_other));
    assert_ne!(old_score, new_score);
    let near = |a: f32, b: f32| (a - b).abs() < 1e-6;
    assert!(near(ask()[0].1[0], old_score));
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "{what} within 20 s: {}",
                server.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // A new file, written elsewhere and renamed in (atomically, as `ember train` writes).
    let staged = scratch.path().join("staged.safetensors");
    std::fs::copy(&m.mnist_other, &staged).unwrap();
    std::fs::rename(&staged, &served).unwrap();
    wait_for("the new model", &|| near(ask()[0].1[0], new_score));
    // A broken file: the model stays, the failure is logged and counted.
    std::fs::write(&served, b"not a model at all").unwrap();
    wait_for("the failed reload", &|| {
        server.log_text().contains("reload_failed")
    });
    assert!(near(ask()[0].1[0], new_score), "the old model answers on");
    let metrics = server.get("/metrics").text();
    assert!(
        metrics.contains(r#"ember_model_reloads_total{model="digits",outcome="failed"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ember_model_reloads_total{model="digits",outcome="ok"} 1"#),
        "{metrics}"
    );
    let log = server.log_text();
    let failure = log.lines().find(|l| l.contains("reload_failed")).unwrap();
    assert!(
        failure.contains("digits.safetensors"),
        "the log names the file: {failure}"
    );
    // A file added to the folder is served under its name.
    std::fs::copy(&m.mnist, folder.join("more.safetensors")).unwrap();
    wait_for("the added model", &|| {
        server.get("/v2/models/more/ready").status == 200
    });
    let more =
        labels_and_scores(&server.post("/v1/models/more:predict", &json!({"instances": [image]})));
    assert!(near(more[0].1[0], old_score));
}

#[test]
fn sigterm_lets_requests_in_flight_finish() {
    let m = models();
    let scratch = Scratch::new("serve-shutdown");
    // A request waits 1.5 s in its batch: it is in flight when SIGTERM comes.
    let server = start(&scratch, &[&m.mnist, "--max-wait-us", "1500000"]);
    let addr = server.addr.clone();
    let image = test_images(1)[0].clone();
    let in_flight = std::thread::spawn(move || {
        let body = json!({"instances": [image]}).to_string();
        common::server::request(
            &addr,
            "POST",
            "/v1/models/mnist:predict",
            &[],
            body.as_bytes(),
        )
    });
    std::thread::sleep(Duration::from_millis(400));
    let addr = server.addr.clone();
    let status = server.terminate(Duration::from_secs(20));
    let reply = in_flight.join().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["predictions"][0]["label"], "7");
    assert!(status.success(), "a clean exit after SIGTERM: {status}");
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "no longer listening"
    );
}

#[test]
fn an_api_key_guards_the_api_but_not_health_or_the_page() {
    let m = models();
    let scratch = Scratch::new("serve-auth");
    let server = Server::start(
        &[&m.mnist],
        &[("EMBER_API_KEY", "s3cret")],
        &scratch.path().join("log"),
    );
    let body = json!({"instances": [test_images(1)[0]]}).to_string();
    let predict = |headers: &[(&str, &str)]| {
        server.request("POST", "/v1/models/mnist:predict", headers, body.as_bytes())
    };
    let none = predict(&[]);
    assert_eq!(
        (none.status, none.error_code().as_str()),
        (401, "unauthorized")
    );
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));
    assert_eq!(predict(&[("Authorization", "Bearer wrong")]).status, 401);
    assert_eq!(predict(&[("Authorization", "Bearer s3cret")]).status, 200);
    assert_eq!(server.get("/v1/models").status, 401);
    assert_eq!(server.get("/metrics").status, 401);
    assert_eq!(server.get("/v2/health/ready").status, 200);
    assert_eq!(server.get("/").status, 200);
    assert!(
        server.log_text().contains(r#""auth":"bearer key""#),
        "the log says a key is needed: {}",
        server.log_text()
    );
    // An empty key is not taken to mean "no key".
    let empty = ["the API key (--api-key or EMBER_API_KEY) is empty"];
    fails_to_start(&[&m.mnist, "--api-key", ""], &[], &empty);
    fails_to_start(&[&m.mnist], &[("EMBER_API_KEY", "")], &empty);
    // --api-key on the command line does the same.
    let scratch = Scratch::new("serve-auth-flag");
    let server = start(&scratch, &[&m.mnist, "--api-key", "k2"]);
    assert_eq!(server.get("/v1/models").status, 401);
    assert_eq!(
        server
            .request("GET", "/v1/models", &[("Authorization", "Bearer k2")], b"")
            .status,
        200
    );
}

/// `ember serve ARGS --port 0` with `env`, which must fail with one line holding every
/// needle; a server that starts instead is stopped after a minute, and the test fails.
fn fails_to_start(args: &[&str], env: &[(&str, &str)], needles: &[&str]) {
    let mut command = common::command(&["serve", "--port", "0"]);
    command.args(args);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ember serve {args:?} with {env:?} started instead of failing");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    common::assert_fails(&child.wait_with_output().unwrap(), needles);
}

#[test]
fn limits_answer_with_clear_4xx_and_a_full_queue_with_503() {
    let m = models();
    let scratch = Scratch::new("serve-limits");
    let server = start(
        &scratch,
        &[
            &m.mnist,
            "--max-body-bytes",
            "100000",
            "--max-instances",
            "3",
        ],
    );
    let image = &test_images(1)[0];
    let many = server.post(
        "/v1/models/mnist:predict",
        &json!({"instances": [image, image, image, image]}),
    );
    assert_eq!(
        (many.status, many.error_code().as_str()),
        (413, "too_many_instances")
    );
    let huge = vec![0u8; 200_000];
    let big = server.request("POST", "/v1/models/mnist:predict", &[], &huge);
    assert_eq!(
        (big.status, big.error_code().as_str()),
        (413, "body_too_large")
    );
    // Headers sent too slowly: the connection is closed, the server goes on.
    let scratch = Scratch::new("serve-slow");
    let server = start(&scratch, &[&m.mnist, "--header-timeout-ms", "300"]);
    let mut slow = std::net::TcpStream::connect(&server.addr).unwrap();
    std::io::Write::write_all(&mut slow, b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut slow, &mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed after the header timeout"
    );
    assert_eq!(server.get("/v2/health/live").status, 200);

    // The queue: one request running (a long batch of texts), one waiting, the next refused.
    let Some(encoder) = &m.encoder else { return };
    let scratch = Scratch::new("serve-queue");
    let encoder = encoder.display().to_string();
    // A timeout long enough for the queued request to run even on a machine busy with
    // other tests: only the full queue answers 503.
    let server = start(
        &scratch,
        &[
            &encoder,
            "--queue",
            "1",
            "--max-wait-us",
            "0",
            "--timeout-ms",
            "300000",
        ],
    );
    let long = "word ".repeat(300);
    let slow_body =
        json!({"model": "all-minilm-l6-v2", "input": vec![long.as_str(); 64]}).to_string();
    let statuses: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|i| {
                let (addr, body) = (&server.addr, &slow_body);
                s.spawn(move || {
                    std::thread::sleep(Duration::from_millis(100 * i));
                    common::server::request(addr, "POST", "/v1/embeddings", &[], body.as_bytes())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let busy: Vec<&Reply> = statuses.iter().filter(|r| r.status == 503).collect();
    assert!(
        !busy.is_empty(),
        "{:?}",
        statuses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(statuses.iter().all(|r| r.status == 200 || r.status == 503));
    assert_eq!(busy[0].error_code(), "queue_full");
    assert_eq!(busy[0].header("retry-after"), Some("1"));
}

#[test]
fn a_thousand_hostile_requests_get_4xx_and_the_server_answers_on() {
    let m = models();
    let scratch = Scratch::new("serve-hostile");
    let mut args: Vec<&str> = vec![&m.mnist, "--max-body-bytes", "2000000"];
    if let Some(t) = &m.titanic {
        args.push(t);
    }
    let server = start(&scratch, &args);
    let image = &test_images(1)[0];
    let good = json!({"instances": [image]}).to_string();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        // xorshift: reproducible noise.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    let fixed: Vec<(&str, &str, Vec<u8>)> = vec![
        ("POST", "/v1/models/mnist:predict", b"{\"instances\": [[1, 2,".to_vec()),
        ("POST", "/v1/models/mnist:predict", b"{\"instances\": \"seven\"}".to_vec()),
        ("POST", "/v1/models/mnist:predict", b"{\"instances\": [[1e999]]}".to_vec()),
        ("POST", "/v1/models/mnist:predict", b"{\"instances\": [{\"b64\": \"%%%not base64%%%\"}]}".to_vec()),
        ("POST", "/v1/models/mnist:predict", format!("{{\"instances\": [{{\"b64\": \"{}\"}}]}}", base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nbroken")).into_bytes()),
        ("POST", "/v1/models/mnist:predict", format!("{{\"instances\": [{}]}}", vec!["1"; 200_000].join(",")).into_bytes()),
        ("POST", "/v1/models/mnist:predict", format!("{{\"instances\": [[{}]]}}", vec!["9e30"; 784].join(",")).into_bytes()),
        ("POST", "/v1/models/mnist:predict", deep.clone().into_bytes()),
        ("POST", "/v1/models/mnist:predict", format!("{{\"instances\": {deep}}}").into_bytes()),
        ("POST", "/v1/models/mnist:predict", b"{\"instances\": [], \"top_k\": -1}".to_vec()),
        ("POST", "/v1/models/ghost:predict", good.clone().into_bytes()),
        ("POST", "/v1/models/mnist:classify", good.clone().into_bytes()),
        ("POST", "/v1/models/mnist:explain", deep.clone().into_bytes()),
        ("POST", "/v1/models/mnist:explain", format!("{{\"instances\": [{}]}}", vec!["1"; 200_000].join(",")).into_bytes()),
        ("POST", "/v1/models/mnist:explain", format!("{{\"instances\": [[{}]]}}", vec!["9e30"; 784].join(",")).into_bytes()),
        ("POST", "/v1/models/mnist:explain", format!("{{\"instances\": [{image:?}], \"method\": \"shap\"}}").into_bytes()),
        ("POST", "/v1/models/mnist:explain", format!("{{\"instances\": [{image:?}], \"method\": \"smoothgrad\", \"samples\": 99999999}}").into_bytes()),
        ("POST", "/v1/models/titanic:explain", b"{\"instances\": [{\"Age\": \"old\"}]}".to_vec()),
        ("POST", "/v1/recommend/mnist", b"{\"user\": \"1\"}".to_vec()),
        ("POST", "/v1/recommend/mnist", deep.clone().into_bytes()),
        ("POST", "/v1/models/titanic:predict", b"{\"instances\": [[1, 2, 3]]}".to_vec()),
        ("POST", "/v1/models/titanic:predict", b"{\"instances\": [{\"Age\": [1]}]}".to_vec()),
        ("POST", "/v2/models/mnist/infer", b"{\"inputs\": [{\"name\": \"input\", \"shape\": [1, 783], \"datatype\": \"FP32\", \"data\": [0]}]}".to_vec()),
        ("POST", "/v2/models/mnist/infer", b"{\"inputs\": [{\"name\": \"input\", \"shape\": [9223372036854775807, 784], \"datatype\": \"FP32\", \"data\": []}]}".to_vec()),
        ("POST", "/v2/models/mnist/infer", b"{\"inputs\": [{\"name\": \"input\", \"shape\": [1, 784], \"datatype\": \"FP16\", \"data\": []}]}".to_vec()),
        ("POST", "/v2/models/mnist/infer", b"{\"inputs\": [{\"name\": \"input\", \"shape\": [1, 784], \"datatype\": \"UINT8\", \"data\": [300]}]}".to_vec()),
        ("POST", "/v2/models/mnist/infer", b"{\"inputs\": [{\"name\": \"x\", \"shape\": [1, 784], \"datatype\": \"FP32\", \"data\": [0]}]}".to_vec()),
        ("POST", "/v2/models/mnist/infer", b"{\"inputs\": [{\"name\": \"input\", \"shape\": [1, 784], \"datatype\": \"FP32\", \"parameters\": {\"binary_data_size\": 3136}}]}".to_vec()),
        ("POST", "/v2/models/mnist/infer", b"{\"inputs\": []}".to_vec()),
        ("GET", "/v2/models/mnist/infer", Vec::new()),
        ("DELETE", "/v1/models", Vec::new()),
        ("POST", "/v1/embeddings", b"{\"model\": \"mnist\", \"input\": \"x\"}".to_vec()),
        ("POST", "/v1/faq/mnist/ask", b"{\"query\": \"x\"}".to_vec()),
        ("GET", "/../../etc/passwd", Vec::new()),
        ("GET", "/v2/models/%ff%fe", Vec::new()),
    ];
    let check = |reply: Reply, what: &str| {
        assert!(
            (400..500).contains(&reply.status),
            "{what}: {} {}",
            reply.status,
            reply.text()
        );
        if reply
            .header("content-type")
            .is_some_and(|t| t.contains("json"))
        {
            reply.error_code();
        }
    };
    let mut answers = 0;
    for (method, path, body) in &fixed {
        check(
            server.request(method, path, &[], body),
            &format!("{method} {path}"),
        );
        answers += 1;
    }
    // The rest: good requests cut short, bytes flipped, random bytes, and random HTTP.
    while answers < 1000 {
        let kind = next() % 4;
        let mut body = good.clone().into_bytes();
        let what = match kind {
            0 => {
                body.truncate((next() as usize) % (body.len() - 1));
                "truncated JSON"
            }
            1 => {
                for _ in 0..1 + next() % 8 {
                    let i = (next() as usize) % body.len();
                    body[i] = b"{}[]\",:x0-e."[(next() % 12) as usize];
                }
                if body == good.as_bytes() {
                    continue;
                }
                "bytes flipped"
            }
            2 => {
                body = (0..next() % 4096).map(|_| next() as u8).collect();
                "random body"
            }
            _ => {
                // Random bytes on the socket, not HTTP at all: a 400 or a closed connection.
                let noise: Vec<u8> = (0..1 + next() % 2048).map(|_| next() as u8).collect();
                if let Ok(reply) = raw(&server.addr, &noise) {
                    check(reply, "random bytes");
                }
                answers += 1;
                continue;
            }
        };
        let reply = server.request("POST", "/v1/models/mnist:predict", &[], &body);
        if reply.status == 200 {
            // A flip can leave valid JSON with valid pixels (a digit changed): fine.
            answers += 1;
            continue;
        }
        check(reply, what);
        answers += 1;
    }
    let answer =
        labels_and_scores(&server.post("/v1/models/mnist:predict", &json!({"instances": [image]})));
    assert_eq!(answer[0].0, "7", "a good request after 1,000 hostile ones");
    let metrics = server.get("/metrics").text();
    assert!(!metrics.contains("status=\"5"), "no 5xx: {metrics}");
}

#[test]
fn bad_paths_and_names_fail_at_start_with_the_file_named() {
    let scratch = Scratch::new("serve-start");
    let broken = scratch.write("broken.safetensors", b"nope");
    common::fails_with(&["serve", &broken, "--port", "0"], &["broken.safetensors"]);
    common::fails_with(
        &["serve", &scratch.file("absent.safetensors"), "--port", "0"],
        &["absent.safetensors"],
    );
    let m = models();
    let twin = scratch.path().join("twin");
    std::fs::create_dir(&twin).unwrap();
    std::fs::copy(&m.mnist, twin.join("mnist.safetensors")).unwrap();
    common::fails_with(
        &[
            "serve",
            &m.mnist,
            &twin.display().to_string(),
            "--port",
            "0",
        ],
        &["a second model named 'mnist'"],
    );
    let empty = scratch.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    common::fails_with(
        &["serve", &empty.display().to_string(), "--port", "0"],
        &["no .safetensors, .index or .rec"],
    );
    let _ = &m.dir;
}

/// OpenAI-compatible chat completions from a GGUF language model: the whole reply equals
/// `ember chat`'s greedy one, and the streamed events add up to it, ending with `[DONE]`.
#[test]
fn chat_completions_answer_whole_and_streamed() {
    let Some(model) = common::llm_model() else {
        return;
    };
    let scratch = Scratch::new("serve-chat");
    let server = start(&scratch, &[&model]);
    let name = "SmolLM2-135M-Instruct.Q4_1";
    let request = json!({
        "model": name,
        "messages": [{"role": "user", "content": "What is 2+2?"}],
        "temperature": 0,
        "max_tokens": 24,
    });
    let reply = server.post("/v1/chat/completions", &request);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    let text = body["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    let cli = ok_with_stdin(
        &[
            "chat",
            "--model",
            &model,
            "--temperature",
            "0",
            "--max-tokens",
            "24",
        ],
        b"What is 2+2?\n",
    );
    assert_eq!(
        cli.trim_end(),
        text,
        "the server and `ember chat` give the same reply"
    );
    let usage = &body["usage"];
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(
            usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
        )
    );

    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let reply = server.post("/v1/chat/completions", &streamed);
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("text/event-stream"));
    let events: Vec<String> = reply
        .text()
        .lines()
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_string))
        .collect();
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let mut joined = String::new();
    for e in &events[..events.len() - 1] {
        let chunk: Value = serde_json::from_str(e).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        joined.push_str(
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or(""),
        );
    }
    assert_eq!(joined, text);

    for (bad, code) in [
        (json!({"model": name, "messages": []}), "invalid_input"),
        (
            json!({"model": name, "messages": [{"role": "robot", "content": "x"}]}),
            "invalid_input",
        ),
        (
            json!({"model": name, "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}),
            "invalid_input",
        ),
        (
            json!({"model": name, "messages": [{"role": "user", "content": "x"}], "temperature": -2}),
            "invalid_input",
        ),
        (
            json!({"model": "absent", "messages": [{"role": "user", "content": "x"}]}),
            "unknown_model",
        ),
    ] {
        let reply = server.post("/v1/chat/completions", &bad);
        assert!(
            (400..500).contains(&reply.status),
            "{bad}: {}",
            reply.text()
        );
        assert_eq!(reply.error_code(), code, "{bad}");
    }
}

/// Until its first request, a connection has the header timeout to live, whatever it sends:
/// nothing, HTTP/2's preface, or the preface and part of a request's HEADERS frame.
#[test]
fn connections_without_a_request_close_at_the_header_timeout() {
    let m = models();
    let scratch = Scratch::new("serve-idle");
    let server = start(&scratch, &[&m.mnist, "--header-timeout-ms", "300"]);
    let preface: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    // An empty SETTINGS frame, then a HEADERS frame on stream 1 that promises 64 bytes and
    // brings 3.
    let settings: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
    let headers: &[u8] = &[0, 0, 64, 1, 4, 0, 0, 0, 1, 0x82, 0x86, 0x84];
    for (what, bytes) in [
        ("nothing", Vec::new()),
        ("the HTTP/2 preface", preface.to_vec()),
        (
            "part of an HTTP/2 request",
            [preface, settings, headers].concat(),
        ),
    ] {
        let mut socket = TcpStream::connect(&server.addr).unwrap();
        socket.write_all(&bytes).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let started = Instant::now();
        let mut answer = Vec::new();
        let closed = match socket.read_to_end(&mut answer) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        };
        assert!(
            closed && started.elapsed() < Duration::from_secs(10),
            "{what}: still open after {:?}",
            started.elapsed()
        );
    }
    assert_eq!(server.get("/v2/health/live").status, 200);
}

/// A body declared larger than --max-body-bytes is refused at once, without waiting for it
/// (nor for --timeout-ms); a chunked one as soon as what came passes the limit.
#[test]
fn oversized_bodies_are_refused_before_they_arrive() {
    let m = models();
    let scratch = Scratch::new("serve-declared");
    let server = start(
        &scratch,
        &[
            &m.mnist,
            "--max-body-bytes",
            "100000",
            "--timeout-ms",
            "30000",
        ],
    );
    let head = |framing: &str| {
        format!("POST /v1/models/mnist:predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{framing}\r\n\r\n")
            .into_bytes()
    };
    let chunk_past_the_limit = [
        head("Transfer-Encoding: chunked"),
        b"186a1\r\n".to_vec(),
        vec![b' '; 100_001],
    ]
    .concat();
    // A chunk that declares too much is refused at its size line, before its data comes
    // (none ever does here), as are chunks that together pass the limit.
    let declared = |sizes: &[u8]| [head("Transfer-Encoding: chunked"), sizes.to_vec()].concat();
    for (what, bytes) in [
        ("one byte too many", head("Content-Length: 100001")),
        ("2^63 bytes", head("Content-Length: 9223372036854775808")),
        ("a chunk past the limit", chunk_past_the_limit),
        (
            "a chunk of 2^64 - 1 bytes, no data",
            declared(b"ffffffffffffffff\r\n"),
        ),
        ("a chunk of 32 MiB, no data", declared(b"2000000\r\n")),
        (
            "chunks past the limit together",
            declared(&[b"c350\r\n".as_slice(), &[b' '; 50_000], b"\r\nc351\r\n"].concat()),
        ),
    ] {
        let started = Instant::now();
        let reply = raw(&server.addr, &bytes).unwrap();
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (413, "body_too_large"),
            "{what}: {}",
            reply.text()
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: answered at once"
        );
    }
    // A chunked body within the limit is read as ever, in chunks of any size.
    let body = json!({"instances": [vec![0; 784]]})
        .to_string()
        .into_bytes();
    let mut chunked = head("Transfer-Encoding: chunked");
    for piece in body.chunks(700) {
        chunked.extend(format!("{:x};x=y\r\n", piece.len()).into_bytes());
        chunked.extend(piece);
        chunked.extend(b"\r\n");
    }
    chunked.extend(b"0\r\n\r\n");
    let reply = raw(&server.addr, &chunked).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = raw(&server.addr, &head("Content-Length: 100001")).unwrap();
    assert!(
        reply
            .text()
            .contains("declares 100001 bytes; at most 100000"),
        "{}",
        reply.text()
    );
}

/// A story SmolLM2 never ends when greedy: it repeats itself up to any `max_tokens`.
const ENDLESS: &str = "Write a very long story about a dragon, at least 5000 words.";
const LLM: &str = "SmolLM2-135M-Instruct.Q4_1";

fn chat_request(content: &str, max_tokens: usize) -> Value {
    json!({
        "model": LLM,
        "messages": [{"role": "user", "content": content}],
        "temperature": 0,
        "max_tokens": max_tokens,
    })
}

/// The bytes of a chat completion request.
fn chat_bytes(request: &Value) -> Vec<u8> {
    let body = request.to_string();
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A generation lives as long as its request: a client that hangs up, a request that times
/// out and a server shutting down each end theirs. Otherwise abandoned generations hold the
/// 4 slots (later requests wait, then time out) and SIGTERM waits for them past --grace-s.
#[test]
fn generations_end_with_their_requests() {
    let Some(model) = common::llm_model() else {
        return;
    };
    let scratch = Scratch::new("serve-cancel");
    let server = start(&scratch, &[&model, "--timeout-ms", "4000"]);
    let endless = chat_bytes(&chat_request(ENDLESS, 4096));
    // More clients than slots hang up while their replies are generated.
    for _ in 0..5 {
        let mut socket = TcpStream::connect(&server.addr).unwrap();
        socket.write_all(&endless).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    // As many as there are slots time out.
    let timed_out: Vec<Reply> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| raw(&server.addr, &endless).unwrap()))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for reply in &timed_out {
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (503, "timeout"),
            "{}",
            reply.text()
        );
    }
    // The slots are free: a short request is answered within the timeout.
    let reply = server.post("/v1/chat/completions", &chat_request("Hi", 4));
    assert_eq!(reply.status, 200, "{}", reply.text());

    // SIGTERM with generations in flight, whole and streamed: after the grace period the
    // process ends.
    let scratch = Scratch::new("serve-cancel-stop");
    let server = start(&scratch, &[&model, "--grace-s", "1"]);
    let mut streamed = chat_request(ENDLESS, 4096);
    streamed["stream"] = json!(true);
    let in_flight: Vec<_> = [endless.clone(), chat_bytes(&streamed)]
        .into_iter()
        .map(|bytes| {
            let addr = server.addr.clone();
            std::thread::spawn(move || {
                let _ = raw(&addr, &bytes);
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let log = server.log.clone();
    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status}");
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("shutdown_forced") && log.contains(r#""event":"stopped""#),
        "{log}"
    );
    for client in in_flight {
        client.join().unwrap();
    }
}

/// What a chat completion cannot do is refused, naming the field; `ember chat` and the
/// server refuse an empty stop string alike; a language model's v2 metadata says what it is.
#[test]
fn chat_refusals_name_what_is_wrong() {
    let Some(model) = common::llm_model() else {
        return;
    };
    let scratch = Scratch::new("serve-chat-refusals");
    let server = start(&scratch, &[&model]);
    let empty_stop = "a stop string must have 1 to 256 bytes, got 0";
    let mut two = chat_request("Hi", 2);
    two["n"] = json!(2);
    let mut stop = chat_request("Hi", 2);
    stop["stop"] = json!(["\n", ""]);
    for (request, needle) in [
        (
            two,
            "n: only one choice per request is generated (n = 1), not 2",
        ),
        (stop, empty_stop),
    ] {
        let reply = server.post("/v1/chat/completions", &request);
        assert_eq!(
            (reply.status, reply.error_code().as_str()),
            (400, "invalid_input"),
            "{request}: {}",
            reply.text()
        );
        assert!(reply.text().contains(needle), "{}", reply.text());
    }
    let mut one = chat_request("Hi", 2);
    one["n"] = json!(1);
    assert_eq!(server.post("/v1/chat/completions", &one).status, 200);
    common::fails_with(&["chat", "--model", &model, "--stop", ""], &[empty_stop]);
    common::fails_with(
        &["generate", "--model", &model, "--stop", "", "Hi"],
        &[empty_stop],
    );
    let meta = server.get(&format!("/v2/models/{LLM}"));
    assert_eq!(meta.status, 404);
    let message = meta.json()["error"].as_str().unwrap().to_string();
    assert!(
        message.contains("is a language model: POST /v1/chat/completions")
            && !message.contains("FAQ"),
        "{message}"
    );
}

/// A GGUF file without a chat template is not given one it was not trained on: chat is
/// refused, by the server and by `ember chat` alike, and `ember generate` still works.
#[test]
fn a_model_without_a_chat_template_is_refused_chat() {
    let Some(model) = common::llm_model() else {
        return;
    };
    let scratch = Scratch::new("serve-no-template");
    let mut bytes = std::fs::read(&model).unwrap();
    // A same-length rename of the key keeps every offset in the file valid.
    let key = b"tokenizer.chat_template";
    let at = bytes.windows(key.len()).position(|w| w == key).unwrap();
    bytes[at + key.len() - 1] = b'X';
    let plain = scratch.write("plain.gguf", &bytes);
    drop(bytes);
    let server = start(&scratch, &[&plain]);
    let mut request = chat_request("Hi", 2);
    request["model"] = json!("plain");
    let reply = server.post("/v1/chat/completions", &request);
    assert_eq!(reply.status, 400, "{}", reply.text());
    let needle = "the model's file has no chat template, so it cannot chat; `ember generate` still continues a prompt written out";
    assert!(reply.text().contains(needle), "{}", reply.text());
    let cli = common::command(&["chat", "--model", &plain])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let err = common::stderr(&cli);
    assert!(
        !cli.status.success() && err.trim_end().ends_with(needle),
        "{err}"
    );
    ok(&["generate", "--model", &plain, "--max-tokens", "2", "Hi"]);
}
