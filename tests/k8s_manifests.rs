//! The deployment files, checked without a cluster or a Docker engine:
//! - scripts/k8s-check.sh renders k8s/base and every overlay (kubectl kustomize, else kustomize,
//!   else the Python renderer, which must agree with kubectl where both exist) and validates
//!   every object with `kubernetes-validate --strict`; again with the Python renderer alone;
//! - no manifest names a namespace or a real image: the kustomizations set both;
//! - the Dockerfile builds `serai` locked, runs `serai node` as a non-root user and exposes the
//!   ports of the built-in config.
//!
//! kubernetes-validate lives in the venv scripts/lib/deps.sh installs (`scripts/test.sh` does
//! it); without it these tests fail and say how to get it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn k8s_check(renderer: Option<&str>) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("scripts/k8s-check.sh"));
    if let Some(renderer) = renderer {
        cmd.env("SERAI_K8S_RENDERER", renderer);
    }
    let out = cmd.output().expect("run bash scripts/k8s-check.sh");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if out.status.code() == Some(2) {
        panic!(
            "the manifest check needs kubernetes-validate, installed by scripts/test.sh \
             (or `bash scripts/lib/deps.sh test`) into .serai/k8s-venv:\n{stderr}"
        );
    }
    assert!(
        out.status.success(),
        "scripts/k8s-check.sh failed ({:?}):\n{stdout}{stderr}",
        out.status
    );
    stdout
}

fn overlays() -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(root().join("k8s/overlays"))
        .expect("k8s/overlays")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("kustomization.yaml").is_file())
        .map(|e| format!("k8s/overlays/{}", e.file_name().to_string_lossy()))
        .collect();
    dirs.sort();
    assert!(
        dirs.contains(&"k8s/overlays/example".to_string()),
        "{dirs:?}"
    );
    dirs
}

fn assert_every_dir_valid(stdout: &str) {
    let mut dirs = vec!["k8s/base".to_string()];
    dirs.extend(overlays());
    for dir in dirs {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("k8s-check: {dir}: "))
                    && l.ends_with("valid (kubernetes-validate --strict)")),
            "{dir} rendered and validated:\n{stdout}"
        );
    }
    assert!(stdout.contains("secret.template.yaml: valid"), "{stdout}");
}

#[test]
fn manifests_render_and_validate_strictly() {
    assert_every_dir_valid(&k8s_check(None));
}

#[test]
fn the_python_renderer_alone_renders_valid_manifests() {
    let stdout = k8s_check(Some("python"));
    assert!(stdout.contains("(python)"), "{stdout}");
    assert_every_dir_valid(&stdout);
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("k8s/base")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn manifests_name_no_namespace_and_no_real_image() {
    let base = root().join("k8s/base");
    let mut images = 0;
    for file in yaml_files(&base) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap_or("");
            if name != "kustomization.yaml" {
                assert!(
                    !code.trim_start().starts_with("namespace:"),
                    "k8s/base/{name}:{}: a manifest names its namespace (set it in a kustomization): {line}",
                    i + 1
                );
            }
            if let Some(image) = code.trim_start().strip_prefix("image:") {
                images += 1;
                assert_eq!(
                    image.trim(),
                    "serai",
                    "k8s/base/{name}:{}: the image is the kustomizations' to set",
                    i + 1
                );
            }
        }
    }
    assert_eq!(images, 2, "the StatefulSet's and the migrate Job's image");
    let base_k = std::fs::read_to_string(base.join("kustomization.yaml")).unwrap();
    assert!(base_k.contains("\nnamespace: serai\n"), "{base_k}");
    assert!(base_k.contains("configMapGenerator:"), "{base_k}");
    let example =
        std::fs::read_to_string(root().join("k8s/overlays/example/kustomization.yaml")).unwrap();
    for needle in ["namespace:", "newName:", "newTag:", "patches:"] {
        assert!(example.contains(needle), "overlay sets {needle}: {example}");
    }
}

#[test]
fn dockerfile_builds_serai_locked_and_runs_it_as_non_root_on_the_config_ports() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let code: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    // Instructions carry no trailing comments (Docker would read them as arguments).
    for line in &code {
        let instruction = line.split_whitespace().next().unwrap_or("");
        if ["COPY", "FROM", "EXPOSE", "USER", "ENTRYPOINT", "WORKDIR"].contains(&instruction) {
            assert!(
                !line.contains(" #"),
                "a comment after an instruction: {line}"
            );
        }
    }
    let froms: Vec<&&str> = code.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(
        froms.len(),
        2,
        "a build stage and a runtime stage: {froms:?}"
    );
    assert!(
        code.iter()
            .any(|l| l.contains("cargo build --release --locked --bin serai")),
        "{dockerfile}"
    );
    let defaults = serai::config::RawConfig::default()
        .validate()
        .expect("defaults");
    let expose = code
        .iter()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .expect("EXPOSE");
    let mut ports: Vec<u16> = expose
        .split_whitespace()
        .map(|p| p.parse().expect("a port"))
        .collect();
    ports.sort();
    assert_eq!(
        ports,
        [
            defaults.client_addr.port(),
            defaults.admin_addr.port(),
            defaults.peer_addr.port()
        ],
        "EXPOSE the config's default ports"
    );
    for (var, port) in [
        ("SERAI_CLIENT_ADDR", defaults.client_addr.port()),
        ("SERAI_ADMIN_ADDR", defaults.admin_addr.port()),
        ("SERAI_PEER_ADDR", defaults.peer_addr.port()),
    ] {
        assert!(
            dockerfile.contains(&format!("{var}=0.0.0.0:{port}")),
            "{var} listens on every interface"
        );
    }
    let user = code
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    assert!(
        !user.starts_with("root") && !user.starts_with("0"),
        "non-root: {user}"
    );
    assert_eq!(
        code.last().copied(),
        Some(r#"ENTRYPOINT ["serai", "node"]"#)
    );
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).expect(".dockerignore");
    for entry in ["target/", ".git/", "node_modules/", ".serai/"] {
        assert!(
            ignore.lines().any(|l| l.trim() == entry),
            ".dockerignore keeps {entry} out"
        );
    }
    // What the build stage copies is what the build reads.
    for path in ["Cargo.toml", "Cargo.lock", "src", "schema", "benches"] {
        assert!(
            code.iter()
                .any(|l| l.starts_with("COPY ") && l.contains(path)),
            "COPY {path}"
        );
        assert!(root().join(path).exists(), "{path}");
    }
}
