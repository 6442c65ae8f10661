//! For the workspace's tests only (hidden from the docs): a person at the
//! chat, typing lines and reading the screen, in this process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines};

use crate::Chat;

/// Someone at the terminal chat: what they type and what their screen shows.
pub struct Person {
    keyboard: DuplexStream,
    screen: Lines<BufReader<DuplexStream>>,
}

impl Person {
    /// Joins the room `lobby` at the relay `base` and waits until connected.
    pub async fn join(base: &str) -> Self {
        let (keyboard, input) = tokio::io::duplex(1 << 16);
        let (output, screen) = tokio::io::duplex(1 << 16);
        let chat = Chat::join(base, "lobby", output).await.unwrap();
        tokio::spawn(async move { chat.run(BufReader::new(input)).await.unwrap() });
        let mut p = Person { keyboard, screen: BufReader::new(screen).lines() };
        p.expect("connected").await;
        p
    }

    /// Types one line.
    pub async fn type_line(&mut self, line: &str) {
        self.keyboard.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    }

    /// Reads screen lines until one contains `needle` (panics after 30 s);
    /// returns the lines read, that one last.
    pub async fn expect(&mut self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let line = tokio::time::timeout(Duration::from_secs(30), self.screen.next_line())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {needle:?}; saw {seen:?}"))
                .unwrap()
                .unwrap();
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return seen;
            }
        }
    }
}
