//! `sealpost-chat`: a terminal chat over a Sealpost relay.

use clap::Parser;
use tokio::io::BufReader;

/// Chat end-to-end encrypted through a Sealpost relay. Type /claim and
/// /verify to get a handle, /add to bring people in, /msg for a direct
/// message; any other line goes to everyone in the room.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// The relay's address.
    #[arg(long, env = "SEALPOST_RELAY", default_value = "http://127.0.0.1:8080")]
    relay: String,
    /// The room's name.
    #[arg(long, default_value = "lobby")]
    room: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let chat = match sealpost_chat::Chat::join(&args.relay, &args.room, tokio::io::stdout()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sealpost-chat: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match chat.run(BufReader::new(tokio::io::stdin())).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sealpost-chat: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
