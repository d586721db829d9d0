//! The set-up of the README's two commands (scripts/lib/deps.sh, run by scripts/test.sh and
//! scripts/dev.sh) against machine descriptions instead of this machine: each case is a temp
//! dir whose PATH holds only stub binaries, whose PostgreSQL directories are its own
//! (SERAI_PG_DIRS), whose npm project is its own (SERAI_NPM_DIR), and whose apt-get, sudo and
//! npm are recorders that append their arguments to a log (apt-get "installs" a package by
//! creating its stub binaries, as the real one would; python3 makes a stub venv whose pip
//! "installs" kubernetes-validate). Root or not is SERAI_AS_ROOT. Each case checks the script
//! asks for exactly what is missing and nothing more.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const PACKAGE_JSON: &str = r#"{
  "name": "fixture",
  "private": true,
  "dependencies": {
    "@heroiclabs/nakama-js": "2.8.0",
    "ws": "8.18.3"
  },
  "scarfSettings": {
    "enabled": false
  }
}
"#;

fn real_tool(name: &str) -> String {
    ["/usr/bin", "/bin"]
        .iter()
        .map(|dir| format!("{dir}/{name}"))
        .find(|path| Path::new(path).is_file())
        .unwrap_or_else(|| panic!("{name} in /usr/bin or /bin"))
}

/// One machine description: which stubs exist, and the recorders.
struct Machine {
    dir: PathBuf,
    sh: String,
}

struct Outcome {
    ok: bool,
    stderr: String,
    /// What the recorders saw, one line per call.
    log: Vec<String>,
}

impl Outcome {
    fn apt_calls(&self) -> Vec<&str> {
        self.log
            .iter()
            .filter_map(|line| line.strip_prefix("apt-get "))
            .collect()
    }

    /// The packages of the (single) `apt-get install`, in order.
    fn installed(&self) -> Vec<String> {
        let installs: Vec<&str> = self
            .apt_calls()
            .into_iter()
            .filter(|call| call.starts_with("install "))
            .collect();
        assert!(
            installs.len() <= 1,
            "one apt-get install at most: {:?}",
            self.log
        );
        installs
            .first()
            .map(|call| {
                call.split_whitespace()
                    .skip(1)
                    .filter(|word| !word.starts_with('-'))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn npm_calls(&self) -> Vec<&String> {
        self.log.iter().filter(|l| l.starts_with("npm ")).collect()
    }
}

impl Machine {
    fn new() -> Machine {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "setup_script-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        for sub in ["bin", "pg/15/bin", "js", "tools", "dot-serai"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        fs::write(dir.join("js/package.json"), PACKAGE_JSON).unwrap();
        fs::write(dir.join("log"), "").unwrap();
        let machine = Machine {
            dir,
            sh: real_tool("sh"),
        };
        machine.write_recorders();
        machine
    }

    fn stub(&self, path: &Path, body: &str) {
        fs::write(path, format!("#!{}\n{body}\n", self.sh)).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn log_path(&self) -> String {
        self.dir.join("log").display().to_string()
    }

    /// Every recorder notes whether it could read anything from its stdin (the script must
    /// give it none, whatever the caller's stdin holds).
    fn record(&self, name: &str) -> String {
        format!(
            "echo \"{name} $*\" >> '{log}'\nif read -r line; then echo \"stdin-read {name}: $line\" >> '{log}'; fi",
            log = self.log_path()
        )
    }

    fn write_recorders(&self) {
        let chmod = real_tool("chmod");
        let bin = self.dir.join("bin").display().to_string();
        let pg = self.dir.join("pg/15/bin").display().to_string();
        // apt-get: record, and for `install` create the stubs the packages would bring.
        let apt = format!(
            "{record}\necho \"apt-env DEBIAN_FRONTEND=$DEBIAN_FRONTEND\" >> '{log}'\n\
             [ \"$1\" = install ] || exit 0\n\
             for p in \"$@\"; do\n\
               case $p in\n\
                 postgresql) for b in initdb pg_ctl; do printf '#!{sh}\\n' > '{pg}'/$b; {chmod} +x '{pg}'/$b; done ;;\n\
                 nodejs) printf '#!{sh}\\necho v20.11.0\\n' > '{bin}/node'; {chmod} +x '{bin}/node' ;;\n\
                 npm) printf '#!{sh}\\n. {npm}\\n' > '{bin}/npm'; {chmod} +x '{bin}/npm' ;;\n\
                 prometheus) printf '#!{sh}\\n' > '{bin}/promtool'; {chmod} +x '{bin}/promtool' ;;\n\
                 chromium) printf '#!{sh}\\n' > '{bin}/chromium'; {chmod} +x '{bin}/chromium' ;;\n\
                 chromium-driver) printf '#!{sh}\\n' > '{bin}/chromedriver'; {chmod} +x '{bin}/chromedriver' ;;\n\
                 python3) printf '#!{sh}\\n. {python}\\n' > '{bin}/python3'; {chmod} +x '{bin}/python3' ;;\n\
               esac\n\
             done",
            record = self.record("apt-get"),
            log = self.log_path(),
            sh = self.sh,
            npm = self.dir.join("tools/npm-body").display(),
            python = self.dir.join("tools/python-body").display(),
        );
        self.stub(&self.dir.join("tools/apt-get"), &apt);
        fs::write(self.dir.join("tools/npm-body"), self.record("npm")).unwrap();
        // python3: `-c` (the venv check) succeeds; `-m venv DIR` is recorded and makes DIR's
        // python and pip; pip records and `install` makes kubernetes-validate next to it.
        let mkdir = real_tool("mkdir");
        let pip_body = self.dir.join("tools/pip-body").display().to_string();
        fs::write(
            self.dir.join("tools/pip-body"),
            format!(
                "{record}\n[ \"$1\" = install ] || exit 0\n\
                 printf '#!{sh}\\n' > \"${{0%/*}}/kubernetes-validate\"; {chmod} +x \"${{0%/*}}/kubernetes-validate\"",
                record = self.record("pip"),
                sh = self.sh,
            ),
        )
        .unwrap();
        fs::write(
            self.dir.join("tools/python-body"),
            format!(
                "[ \"$1\" = -c ] && exit 0\n{record}\n[ \"$1 $2\" = '-m venv' ] || exit 1\n\
                 {mkdir} -p \"$3/bin\"\n\
                 printf '#!{sh}\\n' > \"$3/bin/python\"; {chmod} +x \"$3/bin/python\"\n\
                 printf '#!{sh}\\n. {pip_body}\\n' > \"$3/bin/pip\"; {chmod} +x \"$3/bin/pip\"",
                record = self.record("python3"),
                sh = self.sh,
            ),
        )
        .unwrap();
        // Passwordless sudo: record, then run the command (after `-n` and `env VAR=...`).
        let sudo = format!(
            "{record}\n[ \"$1\" = -n ] && shift\n\
             if [ \"$1\" = env ]; then shift; while case $1 in *=*) true;; *) false;; esac; do export \"$1\"; shift; done; fi\n\
             \"$@\"",
            record = self.record("sudo"),
        );
        self.stub(&self.dir.join("tools/sudo"), &sudo);
        // sudo that wants a password: `-n` fails.
        self.stub(
            &self.dir.join("tools/sudo-password"),
            &format!("{}\nexit 1", self.record("sudo-password")),
        );
    }

    fn with_postgres(self) -> Machine {
        for b in ["initdb", "pg_ctl"] {
            self.stub(&self.dir.join("pg/15/bin").join(b), "");
        }
        self
    }

    fn with_node(self) -> Machine {
        self.stub(&self.dir.join("bin/node"), "echo v20.11.0");
        self
    }

    fn with_npm(self) -> Machine {
        let body = self.dir.join("tools/npm-body").display().to_string();
        self.stub(&self.dir.join("bin/npm"), &format!(". {body}"));
        self
    }

    fn with_npm_packages(self, nakama_version: &str) -> Machine {
        for (name, version) in [("@heroiclabs/nakama-js", nakama_version), ("ws", "8.18.3")] {
            let dir = self.dir.join("js/node_modules").join(name);
            fs::create_dir_all(&dir).unwrap();
            fs::write(
                dir.join("package.json"),
                format!("{{\n  \"name\": \"{name}\",\n  \"version\": \"{version}\",\n  \"main\": \"x.js\"\n}}\n"),
            )
            .unwrap();
        }
        self
    }

    fn venv(&self) -> PathBuf {
        self.dir.join("dot-serai/k8s-venv")
    }

    fn with_python(self) -> Machine {
        let body = self.dir.join("tools/python-body").display().to_string();
        self.stub(&self.dir.join("bin/python3"), &format!(". {body}"));
        self
    }

    /// The manifest validator installed in its venv at the pinned version.
    fn with_k8s_validate(self) -> Machine {
        let bin = self.venv().join("bin");
        fs::create_dir_all(&bin).unwrap();
        self.stub(&bin.join("python"), "");
        self.stub(&bin.join("kubernetes-validate"), "");
        fs::write(
            self.venv().join("serai-pin"),
            "kubernetes-validate==1.37.0\n",
        )
        .unwrap();
        self
    }

    fn with_tool(self, name: &str) -> Machine {
        self.stub(&self.dir.join("bin").join(name), "");
        self
    }

    fn everything(self) -> Machine {
        self.with_postgres()
            .with_node()
            .with_npm()
            .with_npm_packages("2.8.0")
            .with_tool("promtool")
            .with_tool("chromium")
            .with_k8s_validate()
    }

    /// Runs `bash scripts/lib/deps.sh <purpose>` with `env` on top of the machine's.
    fn run(&self, purpose: &str, env: &[(&str, &str)]) -> Outcome {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/lib/deps.sh");
        let mut command = Command::new(real_tool("bash"));
        command
            .arg(script)
            .arg(purpose)
            .env_clear()
            .env("PATH", self.dir.join("bin"))
            .env("HOME", &self.dir)
            .env("SERAI_APT_GET", self.dir.join("tools/apt-get"))
            .env("SERAI_SUDO", self.dir.join("tools/no-sudo-here"))
            .env("SERAI_AS_ROOT", "1")
            .env("SERAI_PG_DIRS", format!("{}/pg/*/bin", self.dir.display()))
            .env("SERAI_PG_PROBE", "none")
            .env("SERAI_NPM_DIR", self.dir.join("js"))
            .env("SERAI_K8S_VENV", self.venv())
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("run bash");
        // Whatever it might read from stdin would be this answer; nothing may read it.
        child.stdin.take().unwrap().write_all(b"y\ny\ny\n").unwrap();
        let out = child.wait_with_output().unwrap();
        let log = fs::read_to_string(self.dir.join("log"))
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>();
        let outcome = Outcome {
            ok: out.status.success(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            log,
        };
        assert!(
            !outcome.log.iter().any(|l| l.starts_with("stdin-read")),
            "a command read stdin: {:?}",
            outcome.log
        );
        outcome
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn report(o: &Outcome) -> String {
    format!("log: {:#?}\nstderr:\n{}", o.log, o.stderr)
}

#[test]
fn bare_machine_as_root_installs_exactly_what_is_missing() {
    let machine = Machine::new();
    let o = machine.run("test", &[]);
    assert!(o.ok, "{}", report(&o));
    assert_eq!(
        o.installed(),
        [
            "postgresql",
            "nodejs",
            "npm",
            "python3",
            "python3-venv",
            "prometheus",
            "chromium"
        ],
        "{}",
        report(&o)
    );
    assert_eq!(
        o.apt_calls().first().copied(),
        Some("update -q"),
        "one update first: {}",
        report(&o)
    );
    assert_eq!(o.apt_calls().len(), 2, "{}", report(&o));
    assert!(
        o.log
            .iter()
            .filter(|l| l.starts_with("apt-env"))
            .all(|l| l == "apt-env DEBIAN_FRONTEND=noninteractive"),
        "{}",
        report(&o)
    );
    assert!(
        o.log.iter().any(|l| l.starts_with("apt-get install -y")),
        "install answers yes by itself: {}",
        report(&o)
    );
    // Then the client tests' packages, with the freshly installed npm.
    let npm = o.npm_calls();
    assert_eq!(npm.len(), 1, "{}", report(&o));
    assert!(
        npm[0].starts_with("npm ci --ignore-scripts"),
        "{}",
        report(&o)
    );
    // And the manifest validator, into its venv, with the freshly installed python3.
    assert_k8s_validate_installed(&machine, &o);
    // No chromedriver: the browser test needs chromium alone.
    assert!(!o.stderr.contains("chromedriver"), "{}", report(&o));
}

#[test]
fn everything_present_installs_nothing_even_as_root() {
    for root in ["1", "0"] {
        let machine = Machine::new().everything();
        let o = machine.run("test", &[("SERAI_AS_ROOT", root)]);
        assert!(o.ok, "{}", report(&o));
        assert!(
            o.log.is_empty(),
            "nothing to do (root={root}): {}",
            report(&o)
        );
        assert!(!o.stderr.contains("missing"), "{}", report(&o));
    }
}

#[test]
fn only_postgres_missing_installs_only_postgresql() {
    let machine = Machine::new()
        .with_node()
        .with_npm()
        .with_npm_packages("2.8.0")
        .with_tool("promtool")
        .with_tool("chromium")
        .with_k8s_validate();
    let o = machine.run("test", &[]);
    assert!(o.ok, "{}", report(&o));
    assert_eq!(o.installed(), ["postgresql"], "{}", report(&o));
    assert!(o.npm_calls().is_empty(), "{}", report(&o));
    // A second run finds it all and installs nothing.
    fs::write(machine.dir.join("log"), "").unwrap();
    let again = machine.run("test", &[]);
    assert!(again.ok && again.log.is_empty(), "{}", report(&again));
}

#[test]
fn node_without_npm_installs_only_npm() {
    let machine = Machine::new()
        .with_postgres()
        .with_node()
        .with_tool("promtool")
        .with_tool("chromium")
        .with_k8s_validate();
    let o = machine.run("test", &[]);
    assert!(o.ok, "{}", report(&o));
    assert_eq!(o.installed(), ["npm"], "{}", report(&o));
    assert_eq!(o.npm_calls().len(), 1, "then npm ci: {}", report(&o));
}

#[test]
fn stale_npm_packages_run_npm_ci_without_apt_or_root() {
    let machine = Machine::new()
        .with_postgres()
        .with_node()
        .with_npm()
        .with_npm_packages("2.7.0")
        .with_tool("promtool")
        .with_tool("chromium")
        .with_k8s_validate();
    let o = machine.run("test", &[("SERAI_AS_ROOT", "0")]);
    assert!(o.ok, "{}", report(&o));
    assert!(
        o.apt_calls().is_empty(),
        "no apt-get, not even update: {}",
        report(&o)
    );
    let npm = o.npm_calls();
    assert_eq!(npm.len(), 1, "{}", report(&o));
    assert!(npm[0].starts_with("npm ci "), "{}", report(&o));
}

#[test]
fn not_root_without_sudo_prints_the_packages_and_fails() {
    for sudo in ["tools/no-sudo-here", "tools/sudo-password"] {
        let machine = Machine::new()
            .with_node()
            .with_tool("promtool")
            .with_tool("chromium")
            .with_k8s_validate();
        let sudo_path = machine.dir.join(sudo).display().to_string();
        let o = machine.run(
            "test",
            &[("SERAI_AS_ROOT", "0"), ("SERAI_SUDO", &sudo_path)],
        );
        assert!(!o.ok, "fails: {}", report(&o));
        assert!(
            o.stderr.contains("apt-get install postgresql npm\n"),
            "names exactly the missing packages ({sudo}): {}",
            report(&o)
        );
        assert!(
            o.stderr
                .contains("missing: PostgreSQL server binaries (initdb, pg_ctl), npm"),
            "{}",
            report(&o)
        );
        assert!(o.apt_calls().is_empty(), "{}", report(&o));
        assert!(o.npm_calls().is_empty(), "{}", report(&o));
    }
}

#[test]
fn not_root_with_passwordless_sudo_installs_through_sudo() {
    let machine = Machine::new()
        .with_node()
        .with_npm()
        .with_npm_packages("2.8.0")
        .with_tool("promtool")
        .with_tool("chromium")
        .with_k8s_validate();
    let sudo = machine.dir.join("tools/sudo").display().to_string();
    let o = machine.run("test", &[("SERAI_AS_ROOT", "0"), ("SERAI_SUDO", &sudo)]);
    assert!(o.ok, "{}", report(&o));
    assert_eq!(o.installed(), ["postgresql"], "{}", report(&o));
    let apt = machine.dir.join("tools/apt-get").display().to_string();
    assert!(
        o.log.contains(&format!(
            "sudo -n env DEBIAN_FRONTEND=noninteractive {apt} install -y -q --no-install-recommends postgresql"
        )),
        "{}",
        report(&o)
    );
    assert!(
        o.log.contains(&"sudo -n true".to_string()),
        "{}",
        report(&o)
    );
}

#[test]
fn no_apt_get_prints_the_packages_and_fails() {
    let machine = Machine::new().everything();
    fs::remove_file(machine.dir.join("bin/npm")).unwrap();
    let missing = machine.dir.join("tools/none").display().to_string();
    let o = machine.run("test", &[("SERAI_APT_GET", &missing)]);
    assert!(!o.ok, "{}", report(&o));
    assert!(o.stderr.contains("no apt-get here"), "{}", report(&o));
    assert!(o.stderr.contains("apt-get install npm\n"), "{}", report(&o));
}

#[test]
fn run_needs_only_the_postgres_binaries() {
    let machine = Machine::new();
    let o = machine.run("run", &[]);
    assert!(o.ok, "{}", report(&o));
    assert_eq!(o.installed(), ["postgresql"], "{}", report(&o));
    assert!(o.npm_calls().is_empty(), "{}", report(&o));
    assert!(!o.stderr.contains("promtool"), "{}", report(&o));

    let ready = Machine::new().with_postgres();
    let o = ready.run("run", &[("SERAI_AS_ROOT", "0")]);
    assert!(o.ok && o.log.is_empty(), "{}", report(&o));
}

#[test]
fn a_database_url_needs_no_postgres_binaries() {
    let machine = Machine::new()
        .with_node()
        .with_npm()
        .with_npm_packages("2.8.0")
        .with_tool("promtool")
        .with_tool("chromium")
        .with_k8s_validate();
    let o = machine.run(
        "test",
        &[
            ("SERAI_DATABASE_URL", "postgresql://elsewhere/db"),
            ("SERAI_AS_ROOT", "0"),
        ],
    );
    assert!(o.ok && o.log.is_empty(), "{}", report(&o));
}

#[test]
fn postgres_binaries_on_path_count() {
    let machine = Machine::new()
        .with_tool("initdb")
        .with_tool("pg_ctl")
        .with_node()
        .with_npm()
        .with_npm_packages("2.8.0")
        .with_tool("promtool")
        .with_tool("chromium")
        .with_k8s_validate();
    let o = machine.run("test", &[("SERAI_AS_ROOT", "0")]);
    assert!(o.ok && o.log.is_empty(), "{}", report(&o));
}

#[test]
fn the_tests_get_chromium_and_a_node_does_not_need_it() {
    let machine = Machine::new()
        .with_postgres()
        .with_node()
        .with_npm()
        .with_npm_packages("2.8.0")
        .with_tool("promtool")
        .with_k8s_validate();
    let o = machine.run("run", &[]);
    assert!(o.ok && o.log.is_empty(), "{}", report(&o));
    let o = machine.run("test", &[]);
    assert!(o.ok, "{}", report(&o));
    assert_eq!(o.installed(), ["chromium"], "{}", report(&o));
    assert!(o.stderr.contains("missing: chromium"), "{}", report(&o));
    fs::write(machine.dir.join("log"), "").unwrap();
    let again = machine.run("test", &[]);
    assert!(again.ok && again.log.is_empty(), "{}", report(&again));
}

#[test]
fn the_tests_get_promtool_and_a_node_does_not_need_it() {
    let machine = Machine::new()
        .with_tool("chromium")
        .with_postgres()
        .with_node()
        .with_npm()
        .with_npm_packages("2.8.0")
        .with_k8s_validate();
    let o = machine.run("run", &[]);
    assert!(o.ok && o.log.is_empty(), "{}", report(&o));
    let o = machine.run("test", &[]);
    assert!(o.ok, "{}", report(&o));
    assert_eq!(o.installed(), ["prometheus"], "{}", report(&o));
    assert!(o.stderr.contains("missing: promtool"), "{}", report(&o));
    // Installed now: a second run finds it and installs nothing.
    fs::write(machine.dir.join("log"), "").unwrap();
    let again = machine.run("test", &[]);
    assert!(again.ok && again.log.is_empty(), "{}", report(&again));
}

fn assert_k8s_validate_installed(machine: &Machine, o: &Outcome) {
    let venv = machine.venv().display().to_string();
    assert!(
        o.log.contains(&format!("python3 -m venv {venv}")),
        "{}",
        report(o)
    );
    assert!(
        o.log
            .iter()
            .any(|l| l.starts_with("pip install ") && l.ends_with(" kubernetes-validate==1.37.0")),
        "{}",
        report(o)
    );
    assert!(machine.venv().join("bin/kubernetes-validate").is_file());
    assert_eq!(
        fs::read_to_string(machine.venv().join("serai-pin"))
            .unwrap()
            .trim(),
        "kubernetes-validate==1.37.0"
    );
}

#[test]
fn a_missing_validator_installs_with_pip_into_its_venv_without_apt() {
    let machine = Machine::new()
        .with_postgres()
        .with_node()
        .with_npm()
        .with_npm_packages("2.8.0")
        .with_tool("promtool")
        .with_tool("chromium")
        .with_python();
    let o = machine.run("test", &[("SERAI_AS_ROOT", "0")]);
    assert!(o.ok, "{}", report(&o));
    assert!(o.apt_calls().is_empty(), "{}", report(&o));
    assert_k8s_validate_installed(&machine, &o);
    // Installed once: the next run finds it.
    fs::write(machine.dir.join("log"), "").unwrap();
    let again = machine.run("test", &[("SERAI_AS_ROOT", "0")]);
    assert!(again.ok && again.log.is_empty(), "{}", report(&again));
    // Another pinned version is installed over it.
    fs::write(
        machine.venv().join("serai-pin"),
        "kubernetes-validate==1.0.0\n",
    )
    .unwrap();
    let stale = machine.run("test", &[("SERAI_AS_ROOT", "0")]);
    assert!(stale.ok, "{}", report(&stale));
    assert_k8s_validate_installed(&machine, &stale);
}

#[test]
fn no_python_installs_python3_with_venv_then_the_validator() {
    let machine = Machine::new()
        .with_postgres()
        .with_node()
        .with_npm()
        .with_npm_packages("2.8.0")
        .with_tool("promtool")
        .with_tool("chromium");
    let o = machine.run("test", &[]);
    assert!(o.ok, "{}", report(&o));
    assert_eq!(o.installed(), ["python3", "python3-venv"], "{}", report(&o));
    assert_k8s_validate_installed(&machine, &o);

    // Not root and no sudo: named, with what follows by itself.
    let machine = Machine::new()
        .with_postgres()
        .with_node()
        .with_npm()
        .with_npm_packages("2.8.0")
        .with_tool("promtool")
        .with_tool("chromium");
    let o = machine.run("test", &[("SERAI_AS_ROOT", "0")]);
    assert!(!o.ok, "{}", report(&o));
    assert!(
        o.stderr.contains("apt-get install python3 python3-venv\n")
            && o.stderr
                .contains("kubernetes-validate then installs by itself"),
        "{}",
        report(&o)
    );
}
