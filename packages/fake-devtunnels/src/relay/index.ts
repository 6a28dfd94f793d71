// The relay side of fake-devtunnels: what the real TunnelRelayTunnelHost connects to, and the
// public web-forwarding listener in front of it.
export { Relay, type RelayEvent, type RelayEventKind, type RelayOptions, type RelayStartOptions } from "./relay.ts";
export { HOST_PROTOCOL_V1, HOST_PROTOCOL_V2, type HostProtocol } from "./host-connection.ts";
export { DEFAULT_WEB_FORWARDING_DOMAIN, parseWebForwardingHost, webForwardingHost, type WebForwardRecord } from "./web-forwarding.ts";
export { anonymousConnectAllowed } from "./access.ts";
