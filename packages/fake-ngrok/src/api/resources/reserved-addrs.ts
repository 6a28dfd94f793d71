// Reserved TCP addresses (ReservedAddrsCreate/List/Get/Update/Delete), kept in
// `account.reservedAddrs`. The address is allocated by `ApiState.allocateTcpAddr`: by
// default a free loopback port (`localhost:PORT`), so a test can dial what the agent side
// later serves there; the agent side may supply its own allocator.
import type { ReservedAddr } from "../../account.ts";
import { ApiErrors } from "../errors.ts";
import { paginate } from "../pagination.ts";
import { type Handler, type HandlerContext, type Json, rfc3339 } from "./context.ts";
import { checkMetadata } from "./metadata.ts";

/** The regions ngrok lists for reserved addresses (ReservedAddr.region). */
export const NGROK_REGIONS = ["au", "eu", "ap", "us", "jp", "in", "sa"] as const;

/** A reserved address as ngrok's ReservedAddr schema has it. */
export function renderReservedAddr(a: ReservedAddr, ctx: Pick<HandlerContext, "baseUrl">): Json {
  return {
    id: a.id,
    uri: `${ctx.baseUrl}/reserved_addrs/${a.id}`,
    created_at: a.createdAt,
    ...(a.description ? { description: a.description } : {}),
    ...(a.metadata ? { metadata: a.metadata } : {}),
    addr: a.addr,
    region: a.region,
  };
}

function find(ctx: HandlerContext): ReservedAddr {
  const a = ctx.account.reservedAddrs.get(ctx.params.id!);
  if (!a) throw ApiErrors.notFound();
  return a;
}

const create: Handler = async (ctx) => {
  const { body, account } = ctx;
  checkMetadata(body);
  const region = typeof body.region === "string" && body.region !== "" ? body.region : account.region;
  if (!(NGROK_REGIONS as readonly string[]).includes(region)) throw ApiErrors.invalidValue("region");
  const reserved: ReservedAddr = {
    id: account.newId("ra"),
    addr: await ctx.state.allocateTcpAddr(),
    region,
    description: typeof body.description === "string" ? body.description : "",
    metadata: typeof body.metadata === "string" ? body.metadata : "",
    createdAt: rfc3339(),
  };
  account.reservedAddrs.set(reserved.id, reserved);
  return renderReservedAddr(reserved, ctx);
};

const list: Handler = (ctx) => {
  const page = paginate([...ctx.account.reservedAddrs.values()], ctx.state.order.reservedAddrs, ctx);
  return { reserved_addrs: page.items.map((a) => renderReservedAddr(a, ctx)), uri: page.uri, next_page_uri: page.next_page_uri };
};

const get: Handler = (ctx) => renderReservedAddr(find(ctx), ctx);

const update: Handler = (ctx) => {
  const current = find(ctx);
  const { body } = ctx;
  if (body.id !== undefined && body.id !== current.id) throw ApiErrors.invalidValue("id");
  checkMetadata(body);
  const updated: ReservedAddr = {
    ...current,
    ...(typeof body.description === "string" ? { description: body.description } : {}),
    ...(typeof body.metadata === "string" ? { metadata: body.metadata } : {}),
  };
  ctx.account.reservedAddrs.set(current.id, updated);
  return renderReservedAddr(updated, ctx);
};

const remove: Handler = (ctx) => {
  ctx.account.reservedAddrs.delete(find(ctx).id);
  return undefined;
};

export const reservedAddrHandlers: Record<string, Handler> = {
  ReservedAddrsCreate: create,
  ReservedAddrsList: list,
  ReservedAddrsGet: get,
  ReservedAddrsUpdate: update,
  ReservedAddrsDelete: remove,
};
