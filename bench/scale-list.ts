/**
 * The filtered `tools/list` scale check of `--scale` alone (the full pipeline
 * in front of `bench/echo-server.ts --tools BENCH_SCALE_TOOLS`): one JSON
 * line with the first list's, the repeated lists' p50 and a new session's
 * wall ms, and the gateway's CPU per repeated list. With
 * BENCH_GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" it profiles the gateway.
 *
 *   BENCH_SCALE_LISTS=40 node_modules/.bin/node bench/scale-list.ts
 */
import { listScale } from './lib/scale.ts';

console.log(JSON.stringify(await listScale()));
process.exit(0);
