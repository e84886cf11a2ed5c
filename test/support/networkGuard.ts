/**
 * Installed by vitest before every test file: refuses any connection or DNS lookup that does not stay on loopback,
 * so a test that forgets to override an endpoint fails instead of sending traffic off this machine.
 */
import type * as Dns from "node:dns"
import { createRequire } from "node:module"
import type * as Net from "node:net"

const require = createRequire(import.meta.url)
const net = require("node:net") as typeof Net
const dns = require("node:dns") as typeof Dns

const loopbackNames = new Set(["localhost", "127.0.0.1", "::1", "[::1]", "0:0:0:0:0:0:0:1"])

export const isLoopback = (host: string | undefined): boolean => {
  if (host === undefined || host === "") return true // Node defaults to localhost
  const h = host.toLowerCase()
  return loopbackNames.has(h) || /^127(\.\d{1,3}){3}$/.test(h) || h.endsWith(".localhost")
}

const refuse = (what: string, host: string): never => {
  throw new Error(`network guard: refused ${what} to non-loopback host ${JSON.stringify(host)}`)
}

const originalConnect = net.Socket.prototype.connect
net.Socket.prototype.connect = function(this: Net.Socket, ...args: Array<any>) {
  const first = args[0]
  let host: string | undefined
  let path: string | undefined
  if (Array.isArray(first)) {
    // internal normalized form [options, cb]
    host = first[0]?.host
    path = first[0]?.path
  } else if (typeof first === "object" && first !== null) {
    host = first.host
    path = first.path
  } else if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    host = typeof args[1] === "string" ? args[1] : undefined
  } else if (typeof first === "string") {
    path = first
  }
  if (path === undefined && !isLoopback(host)) refuse("a connection", String(host))
  return (originalConnect as any).apply(this, args)
} as any

const originalLookup = dns.lookup
;(dns as any).lookup = function(hostname: string, ...rest: Array<any>) {
  if (!isLoopback(hostname)) refuse("a DNS lookup", hostname)
  return (originalLookup as any).call(dns, hostname, ...rest)
}
const originalPromisesLookup = dns.promises.lookup
;(dns.promises as any).lookup = function(hostname: string, ...rest: Array<any>) {
  if (!isLoopback(hostname)) return Promise.reject(new Error(`network guard: refused a DNS lookup of ${hostname}`))
  return (originalPromisesLookup as any).call(dns.promises, hostname, ...rest)
}
for (
  const name of ["resolve", "resolve4", "resolve6", "resolveAny", "resolveCname", "resolveSrv", "resolveTxt"] as const
) {
  ;(dns as any)[name] = (hostname: string) => refuse("a DNS query", hostname)
  ;(dns.promises as any)[name] = (hostname: string) =>
    Promise.reject(new Error(`network guard: refused a DNS query of ${hostname}`))
}
