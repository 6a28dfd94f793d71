// A TCP proxy in front of the API server that can cut, refuse or freeze connections:
// the network faults a controller meets in real clusters, made on demand.
import { createConnection, createServer, type Server, type Socket } from "node:net";

export class FaultyProxy {
  private server?: Server;
  private readonly pairs = new Set<[Socket, Socket]>();
  private readonly frozen: Socket[] = [];
  private refusing = false;
  private blackholing = false;
  private readonly targetPort: number;

  constructor(targetPort: number) {
    this.targetPort = targetPort;
  }

  async listen(): Promise<number> {
    this.server = createServer((client) => {
      if (this.refusing) {
        client.destroy();
        return;
      }
      if (this.blackholing) {
        client.pause();
        client.on("error", () => client.destroy());
        this.frozen.push(client);
        return;
      }
      const upstream = createConnection({ host: "127.0.0.1", port: this.targetPort });
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.pairs.delete(pair);
      };
      client.on("error", close).on("close", close);
      upstream.on("error", close).on("close", close);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    return typeof address === "object" && address ? address.port : 0;
  }

  /** Resets every open connection mid-stream; new ones still work. */
  cut(): void {
    for (const [client, upstream] of this.pairs) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    this.pairs.clear();
  }

  /** Cuts everything and refuses new connections until up(). */
  down(): void {
    this.refusing = true;
    this.cut();
  }

  up(): void {
    this.refusing = false;
    this.blackholing = false;
  }

  /**
   * Open connections freeze and new ones are accepted but never answered: requests hang
   * (a partition), rather than fail fast as with down(). up() ends it for new connections.
   */
  blackhole(): void {
    this.blackholing = true;
    this.freeze();
  }

  /** Open connections stop carrying data but stay open (a half-open link). */
  freeze(): void {
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
      this.frozen.push(client, upstream);
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.down();
    for (const socket of this.frozen.splice(0)) socket.destroy();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}
