//! `sealpost-mqtt-device`: a sensor in the Sealpost chat, over MQTT 5.

use std::process::ExitCode;

use clap::Parser;
use sealpost_mqtt_device::{Device, DeviceError};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A sensor that people in the Sealpost terminal chat can `/add` and ask
/// for a reading: it answers a direct `ping` with `pong` and `read` with a
/// temperature. It enrols once over HTTP, then talks to the relay only
/// through an MQTT 5 broker. Lines typed here: `/add <handle>`,
/// `/msg <handle> <text>`, or text for everyone in the room.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The relay's address, for the one-time enrolment.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    relay: String,
    /// The MQTT broker, host:port.
    #[arg(long, default_value = "127.0.0.1:1883")]
    broker: String,
    /// The handle to claim for this device.
    #[arg(long)]
    handle: String,
    /// The room's name (the chat's `--room`).
    #[arg(long, default_value = sealpost_mqtt_device::DEFAULT_ROOM)]
    room: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sealpost-mqtt-device: {e}");
            ExitCode::FAILURE
        }
    }
}

fn broker_address(broker: &str) -> Result<(&str, u16), String> {
    let (host, port) = broker.rsplit_once(':').ok_or_else(|| format!("--broker {broker}: expected host:port"))?;
    let port = port.parse().map_err(|_| format!("--broker {broker}: {port} is not a port"))?;
    Ok((host.trim_start_matches('[').trim_end_matches(']'), port))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let (host, port) = broker_address(&args.broker)?;
    let enrolment = Device::enrol(&args.relay).await?;
    println!("* enrolled at {}; MQTT client {}", args.relay, enrolment.mqtt.client_id);
    let mut device = Device::connect_in_room(enrolment, host, port, None, &args.room).await?;
    println!("* connected to {}", args.broker);

    device.claim_handle(&args.handle).await?;
    println!("* code sent for {}; type it here", args.handle);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        let Some(line) = lines.next_line().await? else {
            device.disconnect().await;
            return Ok(());
        };
        let code = line.trim();
        if code.is_empty() {
            continue;
        }
        match device.verify_handle(&args.handle, code).await {
            Ok(handle) => {
                println!("* you are @{handle}; waiting for messages (Ctrl-C to stop)");
                break;
            }
            Err(e) => println!("! {e}; type the code again"),
        }
    }

    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            line = lines.next_line() => match line? {
                Some(line) => {
                    if let Err(e) = command(&device, line.trim()).await {
                        println!("! {e}");
                    }
                }
                None => break,
            },
            event = device.next_event() => match event {
                Some(event) => println!("{event}"),
                None => break,
            },
        }
    }
    device.disconnect().await;
    Ok(())
}

/// One typed line.
async fn command(device: &Device, line: &str) -> Result<(), DeviceError> {
    let mut words = line.splitn(3, ' ');
    match words.next().unwrap_or("") {
        "" => {}
        "/add" => {
            let handle = words.next().unwrap_or("");
            let safety_number = device.add(handle).await?;
            println!("* {handle} added; safety number {safety_number}");
        }
        "/msg" => {
            let (handle, text) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            device.send_to(handle, text).await?;
        }
        _ if line.starts_with('/') => println!("! unknown command (/add <handle>, /msg <handle> <text>)"),
        _ => device.broadcast(line).await?,
    }
    Ok(())
}
