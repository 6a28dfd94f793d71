// One host's connection to the relay, in either protocol the SDK speaks:
//
// - V1 `tunnel-relay-host`: the websocket carries an unencrypted SSH session (the SDK's
//   MultiChannelStream shape). Every client is a `client-ssh-session-stream` channel on it,
//   inside which the host runs an SSH *server* (ECDH, host key, `none` client auth) and, once
//   the client authenticated, forwards each tunnel port to it (`tcpip-forward`). The relay
//   keeps one such client session per host connection for all its clients.
// - V2 `tunnel-relay-host-v2-dev`: the websocket carries an SSH session with `none` key
//   exchange in which the host is the SSH client; it forwards each tunnel port to the relay
//   (`tcpip-forward` as PortRelayRequestMessage with its host token) and the relay opens
//   `forwarded-tcpip` channels (PortRelayConnectRequestMessage) for clients.
import type { Duplex } from "node:stream";
import {
  MultiChannelStream,
  NodeStream,
  SshAlgorithms,
  SshAuthenticationType,
  SshChannelOpenFailureReason,
  SshClientSession,
  SshDisconnectReason,
  SshServerSession,
  SshSessionConfiguration,
  type KeyPair,
  type SshSession,
} from "@microsoft/dev-tunnels-ssh";
import { PortForwardingService } from "@microsoft/dev-tunnels-ssh-tcp";
import { forwardedPorts, openForwardedPort, RelayPortMessageFactory, relayRequestToken } from "./port-forwarding.ts";
import type { HostTransport } from "./websocket.ts";

export const HOST_PROTOCOL_V1 = "tunnel-relay-host";
export const HOST_PROTOCOL_V2 = "tunnel-relay-host-v2-dev";
export type HostProtocol = typeof HOST_PROTOCOL_V1 | typeof HOST_PROTOCOL_V2;

/** The SDK's channel type for a client's SSH session inside a V1 host connection. */
const CLIENT_SESSION_CHANNEL = "client-ssh-session-stream";

export interface HostConnectionHooks {
  /** Whether `token` (from a V2 `tcpip-forward`) may host this tunnel. */
  isHostToken(token: string): boolean;
  violation(message: string): void;
  portForwarded(port: number): void;
  portUnforwarded(port: number): void;
  closed(reason: SshDisconnectReason, message: string): void;
}

export interface OpenPortTimeouts {
  /** How long to wait for the host to forward a port it does not forward yet. */
  portWaitMs: number;
  /** How long to wait for the host to accept the channel. */
  openTimeoutMs: number;
}

export abstract class HostConnection {
  readonly id: number;
  readonly tunnelId: string;
  readonly transport: HostTransport;
  readonly connectedAt = Date.now();
  protected readonly hooks: HostConnectionHooks;
  private closedReported = false;

  constructor(id: number, tunnelId: string, transport: HostTransport, hooks: HostConnectionHooks) {
    this.id = id;
    this.tunnelId = tunnelId;
    this.transport = transport;
    this.hooks = hooks;
  }

  abstract readonly protocol: HostProtocol;

  private handshake?: Promise<void>;

  /** Runs the SSH handshake with the host (once; later calls return the same promise). */
  connect(): Promise<void> {
    this.handshake ??= this.runHandshake().catch((error: unknown) => {
      this.reportClosed(SshDisconnectReason.connectionLost, `handshake failed: ${error instanceof Error ? error.message : String(error)}`);
      throw error;
    });
    return this.handshake;
  }

  protected abstract runHandshake(): Promise<void>;

  /** Ports the host forwards to the relay right now. */
  abstract hostedPorts(): Promise<number[]>;

  /** A byte stream to `port` on the host (its forwarder dials the backend). */
  abstract openPort(port: number, timeouts: OpenPortTimeouts): Promise<Duplex>;

  /** Closes the session with an SSH disconnect (the reason the SDK acts on), then the websocket. */
  abstract disconnect(reason: SshDisconnectReason, message: string): Promise<void>;

  protected reportClosed(reason: SshDisconnectReason, message: string): void {
    if (this.closedReported) return;
    this.closedReported = true;
    this.hooks.closed(reason, message);
  }
}

/** The host key the relay's SSH sessions present where one is needed (V2 with a key exchange). */
let relayHostKey: Promise<KeyPair> | undefined;
const hostKey = (): Promise<KeyPair> => (relayHostKey ??= SshAlgorithms.publicKey.ecdsaSha2Nistp384!.generateKeyPair());

/** Forwarded ports stay inside the relay: no TCP listener per port here, and nothing dialled locally. */
function keepForwardingInside(pfs: PortForwardingService): void {
  pfs.acceptLocalConnectionsForForwardedPorts = false;
  pfs.forwardConnectionsToLocalPorts = false;
  pfs.acceptRemoteConnectionsForNonForwardedPorts = false;
}

class RelayMultiChannelStream extends MultiChannelStream {
  get sshSession(): SshSession {
    return this.session;
  }
}

export class HostConnectionV1 extends HostConnection {
  readonly protocol = HOST_PROTOCOL_V1;
  private readonly channels: RelayMultiChannelStream;
  private clientSession?: Promise<{ session: SshClientSession; pfs: PortForwardingService }>;

  constructor(id: number, tunnelId: string, transport: HostTransport, hooks: HostConnectionHooks) {
    super(id, tunnelId, transport, hooks);
    this.channels = new RelayMultiChannelStream(transport.stream);
    this.channels.onClosed((e) => this.reportClosed(e.reason, e.message));
    this.channels.onChannelOpening((e) => {
      if (e.isRemoteRequest) {
        hooks.violation(`V1 host opened a ${e.channel.channelType} channel to the relay (the relay opens channels, not the host)`);
      }
    });
  }

  protected async runHandshake(): Promise<void> {
    await this.channels.connect();
  }

  async hostedPorts(): Promise<number[]> {
    const { pfs } = await this.client();
    return forwardedPorts(pfs);
  }

  async openPort(port: number, timeouts: OpenPortTimeouts): Promise<Duplex> {
    const { pfs } = await this.client();
    return openForwardedPort(pfs, port, timeouts.portWaitMs, timeouts.openTimeoutMs);
  }

  async disconnect(reason: SshDisconnectReason, message: string): Promise<void> {
    await this.channels.sshSession.close(reason, message);
    this.transport.close();
  }

  /** The relay's client session inside this host connection, opened on first use and again after it closes. */
  private client(): Promise<{ session: SshClientSession; pfs: PortForwardingService }> {
    this.clientSession ??= this.openClientSession().catch((error: unknown) => {
      this.clientSession = undefined;
      throw error;
    });
    return this.clientSession;
  }

  private async openClientSession(): Promise<{ session: SshClientSession; pfs: PortForwardingService }> {
    await this.connect();
    const stream = await this.channels.openStream(CLIENT_SESSION_CHANNEL);
    const config = new SshSessionConfiguration();
    config.addService(PortForwardingService);
    const session = new SshClientSession(config);
    // The host's key is not checked: the relay knows hosts by their websocket token.
    session.onAuthenticating((e) => {
      if (e.authenticationType === SshAuthenticationType.serverPublicKey) e.authenticationPromise = Promise.resolve({});
    });
    session.onRequest((e) => {
      e.isAuthorized = e.requestType === "tcpip-forward" || e.requestType === "cancel-tcpip-forward";
      if (!e.isAuthorized) this.hooks.violation(`V1 host sent an unexpected session request ${e.requestType}`);
    });
    const pfs = session.activateService(PortForwardingService);
    keepForwardingInside(pfs);
    pfs.remoteForwardedPorts.onPortAdded((e) => e.port.remotePort !== null && this.hooks.portForwarded(e.port.remotePort));
    pfs.remoteForwardedPorts.onPortRemoved((e) => e.port.remotePort !== null && this.hooks.portUnforwarded(e.port.remotePort));
    session.onClosed(() => {
      this.clientSession = undefined;
    });
    await session.connect(new NodeStream(stream));
    if (!(await session.authenticate({ username: "tunnel" }))) {
      await session.close(SshDisconnectReason.noMoreAuthMethodsAvailable, "host refused client authentication");
      throw new Error("the V1 host refused the relay's client session (username 'tunnel', no credentials)");
    }
    return { session, pfs };
  }
}

export class HostConnectionV2 extends HostConnection {
  readonly protocol = HOST_PROTOCOL_V2;
  private readonly session: SshServerSession;
  private readonly pfs: PortForwardingService;

  constructor(id: number, tunnelId: string, transport: HostTransport, hooks: HostConnectionHooks) {
    super(id, tunnelId, transport, hooks);
    const config = new SshSessionConfiguration();
    // The outer session is already inside TLS: `none` first, as the SDK prefers it too.
    config.keyExchangeAlgorithms.splice(0, 0, SshAlgorithms.keyExchange.none ?? null);
    config.addService(PortForwardingService);
    this.session = new SshServerSession(config);
    this.session.onAuthenticating((e) => {
      if (e.authenticationType === SshAuthenticationType.clientNone) e.authenticationPromise = Promise.resolve({});
    });
    this.session.onRequest((e) => {
      if (e.requestType !== "tcpip-forward" && e.requestType !== "cancel-tcpip-forward") {
        hooks.violation(`V2 host sent an unexpected session request ${e.requestType}`);
        return;
      }
      if (e.requestType === "cancel-tcpip-forward") {
        e.isAuthorized = true;
        return;
      }
      const token = relayRequestToken(e.request);
      e.isAuthorized = token !== undefined && hooks.isHostToken(token);
      if (!e.isAuthorized) hooks.violation(`V2 host forwarded a port without a valid host token (PortRelayRequestMessage.accessToken)`);
    });
    this.session.onChannelOpening((e) => {
      if (e.isRemoteRequest) {
        e.failureReason = SshChannelOpenFailureReason.administrativelyProhibited;
        hooks.violation(`V2 host opened a ${e.channel.channelType} channel to the relay (not implemented)`);
      }
    });
    this.session.onClosed((e) => this.reportClosed(e.reason, e.message));
    this.pfs = this.session.activateService(PortForwardingService);
    keepForwardingInside(this.pfs);
    this.pfs.messageFactory = new RelayPortMessageFactory();
    this.pfs.remoteForwardedPorts.onPortAdded((e) => e.port.remotePort !== null && hooks.portForwarded(e.port.remotePort));
    this.pfs.remoteForwardedPorts.onPortRemoved((e) => e.port.remotePort !== null && hooks.portUnforwarded(e.port.remotePort));
  }

  protected async runHandshake(): Promise<void> {
    this.session.credentials = { publicKeys: [await hostKey()] };
    await this.session.connect(this.transport.stream);
  }

  async hostedPorts(): Promise<number[]> {
    await this.connect();
    return forwardedPorts(this.pfs);
  }

  async openPort(port: number, timeouts: OpenPortTimeouts): Promise<Duplex> {
    await this.connect();
    return openForwardedPort(this.pfs, port, timeouts.portWaitMs, timeouts.openTimeoutMs);
  }

  async disconnect(reason: SshDisconnectReason, message: string): Promise<void> {
    await this.session.close(reason, message);
    this.transport.close();
  }
}
