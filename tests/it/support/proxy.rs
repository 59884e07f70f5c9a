//! A TCP forwarder that can cut every connection, to make a database "go away" for one test
//! without stopping the server other tests use: refusing (a restart) or silent (a partition).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<AtomicU8>,
    generation: watch::Sender<u64>,
}

const UP: u8 = 0;
const REFUSING: u8 = 1;
const SILENT: u8 = 2;

impl Proxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(UP));
        let (generation, _) = watch::channel(0u64);
        let (flag, gen_tx) = (mode.clone(), generation.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut cut = gen_tx.subscribe();
                match flag.load(Ordering::SeqCst) {
                    REFUSING => drop(client),
                    // A partition: the connection opens and nothing ever answers.
                    SILENT => {
                        tokio::spawn(async move {
                            let _ = cut.changed().await;
                            drop(client);
                        });
                    }
                    _ => {
                        tokio::spawn(async move {
                            let Ok(mut server) = TcpStream::connect(target).await else { return };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = cut.changed() => {}
                            }
                        });
                    }
                }
            }
        });
        Self { addr, mode, generation }
    }

    /// Refuses new connections and severs the open ones (a server restarting).
    pub fn cut(&self) {
        self.mode.store(REFUSING, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Severs the open connections; new ones open but get no answer (a network partition).
    pub fn go_silent(&self) {
        self.mode.store(SILENT, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        if self.mode.swap(UP, Ordering::SeqCst) == SILENT {
            // Let the held connections fail, so their clients open fresh ones.
            self.generation.send_modify(|g| *g += 1);
        }
    }
}
