// The relay's end of SSH port forwarding with a host: the V2 message factory (the relay
// opens `forwarded-tcpip` channels whose open message carries the tunnel's extra fields, or
// the host fails parsing it with "Attempted to read past end of buffer"), and opening a
// stream to a port the host forwards.
import type { Duplex } from "node:stream";
import {
  PortForwardRequestMessage,
  PortForwardSuccessMessage,
  type PortForwardChannelOpenMessage,
  type PortForwardingService,
  type PortForwardMessageFactory,
} from "@microsoft/dev-tunnels-ssh-tcp";
import { PortRelayConnectRequestMessage } from "@microsoft/dev-tunnels-connections/messages/portRelayConnectRequestMessage.js";
import { PortRelayRequestMessage } from "@microsoft/dev-tunnels-connections/messages/portRelayRequestMessage.js";
import type { SessionRequestMessage } from "@microsoft/dev-tunnels-ssh";

/**
 * What the relay sends on a V2 host session. Channels ask for no end-to-end encryption:
 * web-forwarding traffic is not E2E-encrypted in the service either (TLS ends at the relay),
 * and the fake does not run the SecureStream an SDK client would.
 */
export class RelayPortMessageFactory implements PortForwardMessageFactory {
  async createRequestMessageAsync(): Promise<PortForwardRequestMessage> {
    return new PortForwardRequestMessage();
  }

  async createSuccessMessageAsync(): Promise<PortForwardSuccessMessage> {
    return new PortForwardSuccessMessage();
  }

  async createChannelOpenMessageAsync(): Promise<PortForwardChannelOpenMessage> {
    const message = new PortRelayConnectRequestMessage();
    message.accessToken = "";
    message.isE2EEncryptionRequested = false;
    return message;
  }
}

/** The access token a V2 host put in its `tcpip-forward` request (PortRelayRequestMessage). */
export function relayRequestToken(request: SessionRequestMessage): string | undefined {
  try {
    return request.convertTo(new PortRelayRequestMessage()).accessToken;
  } catch {
    return undefined;
  }
}

export function forwardedPorts(pfs: PortForwardingService): number[] {
  return [...pfs.remoteForwardedPorts]
    .map((p) => p.remotePort)
    .filter((p): p is number => p !== null)
    .sort((a, b) => a - b);
}

/** Resolves true once the host forwards `port` on this service, false after `timeoutMs` or when the session closes. */
export function waitForForwardedPort(pfs: PortForwardingService, port: number, timeoutMs: number): Promise<boolean> {
  if (pfs.remoteForwardedPorts.find((p) => p.remotePort === port)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const finish = (result: boolean): void => {
      clearTimeout(timer);
      added.dispose();
      closed.dispose();
      resolve(result);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    const added = pfs.remoteForwardedPorts.onPortAdded((e) => {
      if (e.port.remotePort === port) finish(true);
    });
    const closed = pfs.session.onClosed(() => finish(false));
  });
}

export class PortNotForwardedError extends Error {
  readonly reason = "PortNotForwarded";
}

export class HostTimeoutError extends Error {
  readonly reason = "HostTimeout";
}

/**
 * Opens a `forwarded-tcpip` channel to `port` on the host, waiting up to `portWaitMs` for the
 * host to forward it and up to `openTimeoutMs` for the host to accept the channel. A channel
 * open that times out is not cancelled (the SSH library closes the whole session when a
 * confirmation arrives for a cancelled open): it is left pending and closed if it opens later.
 */
export async function openForwardedPort(pfs: PortForwardingService, port: number, portWaitMs: number, openTimeoutMs: number): Promise<Duplex> {
  if (!(await waitForForwardedPort(pfs, port, portWaitMs))) throw new PortNotForwardedError(`the host does not forward port ${port}`);
  const opening = connectWithRetry(pfs, port);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new HostTimeoutError(`the host did not accept a connection to port ${port} within ${openTimeoutMs} ms`)), openTimeoutMs);
  });
  try {
    return await Promise.race([opening, timeout]);
  } catch (error) {
    if (error instanceof HostTimeoutError) opening.then((late) => late.destroy(), () => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function connectWithRetry(pfs: PortForwardingService, port: number): Promise<Duplex> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await pfs.connectToForwardedPort(port);
    } catch (error) {
      // The SDK registers a forwarded port only once the relay has answered its
      // `tcpip-forward`, so a channel opened right after the request is refused:
      // "Forwarding channel was not requested". Try again shortly, as a relay must.
      if (attempt >= NOT_YET_REQUESTED_ATTEMPTS || !isNotYetRequested(error)) throw error;
      await new Promise((resolve) => setTimeout(resolve, 10 * attempt));
    }
  }
}

const NOT_YET_REQUESTED_ATTEMPTS = 10;

function isNotYetRequested(error: unknown): boolean {
  return error instanceof Error && error.message.includes("was not requested");
}
