// Tunnel sessions (TunnelSessionsList/Get/Stop): the agent sessions in
// `account.sessions`. Stop asks the agent side (`account.agentControl.stopSession`) to
// send the agent its Stop command and drop the session; with no agent side installed (a
// test that seeded the account by hand) the fake removes the session and its endpoints
// itself. Restart and Update are not implemented.
import type { AgentSession } from "../../account.ts";
import { ApiErrors } from "../errors.ts";
import { paginate } from "../pagination.ts";
import type { Handler, HandlerContext, Json } from "./context.ts";

/** The IP of `host:port` (`[v6]:port` included); ngrok's `ip` has no port. */
export function ipOf(address: string): string {
  const v6 = /^\[(.*)\]:\d+$/.exec(address);
  if (v6) return v6[1]!;
  const v4 = /^([^:]+):\d+$/.exec(address);
  return v4 ? v4[1]! : address;
}

/** A session as ngrok's TunnelSession schema has it (the authtoken's credential is not served). */
export function renderTunnelSession(s: AgentSession, ctx: Pick<HandlerContext, "baseUrl">): Json {
  return {
    agent_version: s.agentVersion,
    id: s.id,
    ip: ipOf(s.ip),
    ...(s.metadata ? { metadata: s.metadata } : {}),
    os: s.os,
    region: s.region,
    started_at: s.startedAt,
    transport: "ngrok/2",
    uri: `${ctx.baseUrl}/tunnel_sessions/${s.id}`,
  };
}

function find(ctx: HandlerContext): AgentSession {
  const s = ctx.account.sessions.get(ctx.params.id!);
  if (!s) throw ApiErrors.notFound();
  return s;
}

const list: Handler = (ctx) => {
  const page = paginate([...ctx.account.sessions.values()], ctx.state.order.tunnelSessions, ctx);
  return { tunnel_sessions: page.items.map((s) => renderTunnelSession(s, ctx)), uri: page.uri, next_page_uri: page.next_page_uri };
};

const get: Handler = (ctx) => renderTunnelSession(find(ctx), ctx);

const stop: Handler = (ctx) => {
  const session = find(ctx);
  if (ctx.body.id !== undefined && ctx.body.id !== session.id) throw ApiErrors.invalidValue("id");
  const control = ctx.account.agentControl;
  if (control) {
    if (!control.stopSession(session.id)) throw ApiErrors.notFound();
    return undefined;
  }
  ctx.account.sessions.delete(session.id);
  for (const [id, endpoint] of ctx.account.endpoints) if (endpoint.sessionId === session.id) ctx.account.endpoints.delete(id);
  return undefined;
};

export const tunnelSessionHandlers: Record<string, Handler> = {
  TunnelSessionsList: list,
  TunnelSessionsGet: get,
  TunnelSessionsStop: stop,
};
