import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Starts `server` on `host:port`; resolves with the bound port (useful with port 0). Rejects on EADDRINUSE and the like. */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/**
 * Stops accepting connections, closes idle ones, lets requests in flight
 * finish for up to `deadlineMs`, then cuts what is left (DESIGN: drain on shutdown).
 */
export function closeGracefully(server: Server, deadlineMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), deadlineMs);
    timer.unref();
    // A keep-alive connection whose request finishes during the drain becomes idle: close it then, not at the deadline.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    sweep.unref();
    server.close(() => { clearTimeout(timer); clearInterval(sweep); resolve(); });
    server.closeIdleConnections();
  });
}
