//! For the workspace's tests only (hidden from the docs): a throwaway
//! Mosquitto broker started by `scripts/mqtt-broker.sh`, set up as
//! docs/RELAY.md section 14 asks an operator to.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use crate::config::{Config, MqttUrl};

/// A broker of its own for one test: the dynamic-security plugin, a
/// loopback port, its files in a fresh directory. Stopped (and its files
/// removed) on drop.
pub struct Broker {
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The file holding the relay client's password.
    pub relay_password_file: PathBuf,
    /// The password of the broker's `admin` client.
    pub admin_password: String,
    /// The TLS listener's port, for a broker from [`Broker::start_tls`].
    pub tls_port: Option<u16>,
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/mqtt-broker.sh")
}

impl Broker {
    /// Starts one (installing Debian's mosquitto first if it is missing).
    pub fn start() -> Result<Self, String> {
        Self::start_with(None)
    }

    /// [`Broker::start`] with a second listener that speaks TLS with this
    /// certificate and key (PEM), on [`Broker::tls_port`].
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Result<Self, String> {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Result<Self, String> {
        let mut name = [0u8; 8];
        rand_core::Rng::fill_bytes(&mut sealpost::os_rng(), &mut name);
        let name: String = name.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("sealpost-mqtt-{name}"));
        if let Some((cert, key)) = tls {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            std::fs::write(dir.join("tls.crt"), cert).map_err(|e| e.to_string())?;
            std::fs::write(dir.join("tls.key"), key).map_err(|e| e.to_string())?;
        }
        let out = Command::new("bash").arg(script()).arg("start").arg(&dir).output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("the broker did not start: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let exports: HashMap<&str, &str> =
            stdout.lines().filter_map(|l| l.strip_prefix("export ")?.split_once('=')).collect();
        let get = |key: &str| exports.get(key).copied().ok_or_else(|| format!("the script did not print {key}"));
        Ok(Broker {
            port: get("SEALPOST_TEST_MQTT_PORT")?.parse().map_err(|_| "a bad port".to_owned())?,
            relay_password_file: PathBuf::from(get("SEALPOST_TEST_MQTT_RELAY_PASSWORD_FILE")?),
            admin_password: get("SEALPOST_TEST_MQTT_ADMIN_PASSWORD")?.to_owned(),
            tls_port: exports.get("SEALPOST_TEST_MQTT_TLS_PORT").and_then(|p| p.parse().ok()),
            dir,
        })
    }

    /// Stops the broker (SIGTERM: it saves its sessions) and starts it
    /// again on the same port with the same state.
    pub fn restart(&self) -> Result<(), String> {
        let status = Command::new("bash").arg(script()).arg("restart").arg(&self.dir).status();
        match status {
            Ok(s) if s.success() => Ok(()),
            other => Err(format!("the broker did not restart: {other:?}")),
        }
    }

    /// [`Broker::restart`] on a thread of its own, so that the caller's
    /// traffic goes on meanwhile.
    pub fn restart_in_background(&self) -> std::thread::JoinHandle<Result<(), String>> {
        let dir = self.dir.clone();
        std::thread::spawn(move || {
            let status = Command::new("bash").arg(script()).arg("restart").arg(&dir).status();
            match status {
                Ok(s) if s.success() => Ok(()),
                other => Err(format!("the broker did not restart: {other:?}")),
            }
        })
    }

    /// Sets the relay's MQTT settings for this broker.
    pub fn configure(&self, config: &mut Config) {
        config.mqtt_url = Some(MqttUrl { host: "127.0.0.1".into(), port: self.port, tls: false });
        config.mqtt_username = Some("sealpost-relay".into());
        config.mqtt_password_file = Some(self.relay_password_file.clone());
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("stop").arg(&self.dir).status();
    }
}
