// Work-around for Portkey gateway's streaming bug on Node (Portkey-AI/gateway#1389,
// #1550): it appends x-portkey-* headers to the upstream fetch() Response, whose
// headers are immutable under the Fetch spec, and every streamed request then fails
// with "TypeError: immutable". Re-wrap each fetch() Response with a mutable copy of
// its headers (body streamed through untouched). Cost: one Headers copy per call.
"use strict";
const originalFetch = globalThis.fetch;
globalThis.fetch = async function fetch(...args) {
  const response = await originalFetch.apply(this, args);
  return new Response(response.body, {
    status: response.status,
    statusText: response.statusText,
    headers: new Headers(response.headers),
  });
};
