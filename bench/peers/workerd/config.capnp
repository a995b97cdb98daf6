# workerd config for bench/peers.sh (from ../shared/bench-peers/workerd/config.capnp).
# The port here is the default; run.mjs overrides it with --socket-addr http=127.0.0.1:PORT.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "hello", worker = .helloWorker) ],
  sockets = [ (name = "http", address = "127.0.0.1:4524", http = (), service = "hello") ],
);

const helloWorker :Workerd.Worker = (
  modules = [ (name = "worker", esModule = embed "worker.mjs") ],
  compatibilityDate = "2025-01-01",
);
