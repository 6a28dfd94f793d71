// The agent side of fake-ngrok: what the real @ngrok/ngrok SDK connects to.
export { AgentIngress, type AgentIngressOptions, type AgentIngressStartOptions, type StopEndpointOptions } from "./ingress.ts";
export { allocateTcpAddr, listenPortOf, sameTcpAddr } from "./tcp-addrs.ts";
export { isWellFormedAuthtoken, newAuthtoken } from "./authtoken.ts";
export { createTestCa, type IssuedCert, type TestCa } from "./certs.ts";
export type { ProxyRecord, RpcRecord, SessionEvent } from "./rpc-log.ts";
export type { CommandResponse, ProxyHeader } from "./wire.ts";
