// Live updates: refresh() runs now, on every server-sent event of `streamPath` (read with fetch, so the API
// key travels as a header, which EventSource cannot send), and every second while no stream answers.
import { authHeaders } from "./api.js";

const POLL_MS = 1000;

export function follow(streamPath, refresh) {
  const stop = new AbortController();
  let streaming = false;
  let pending = false;

  const run = async () => {
    if (pending || stop.signal.aborted) return;
    pending = true;
    try { await refresh(); } catch (err) { console.warn(err); } finally { pending = false; }
  };

  const poll = setInterval(() => { if (!streaming) run(); }, POLL_MS);
  run();
  if (streamPath) stream(streamPath, stop.signal, () => { streaming = true; run(); }, () => { streaming = false; });

  return () => { stop.abort(); clearInterval(poll); };
}

async function stream(path, signal, onEvent, onClosed) {
  let lastId = null;
  while (!signal.aborted) {
    try {
      const headers = { ...authHeaders(), Accept: "text/event-stream" };
      if (lastId) headers["Last-Event-ID"] = lastId;
      const res = await fetch(path, { headers, signal });
      const type = res.headers.get("content-type") || "";
      if (!res.ok || !type.startsWith("text/event-stream")) return onClosed();  // no stream here: poll
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
          const id = block.split(/\r?\n/).find((line) => line.startsWith("id:"));
          if (id) lastId = id.slice(3).trim();
          if (/^(data|event):/m.test(block)) onEvent();
        }
      }
    } catch (err) {
      if (signal.aborted) return;
    }
    onClosed();
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
