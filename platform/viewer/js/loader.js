// Downloads in the order a reader needs them, a few at a time: the shown image's preview, its full
// rendition, then the rest of the series nearest first, and last the next cases' previews.

export class Loader {
  constructor(nextJob, { parallel = 3 } = {}) {
    this.nextJob = nextJob; // () => (() => Promise) | null
    this.parallel = parallel;
    this.running = 0;
    this.state = new Map(); // key -> "loading" | "done" | "error"
  }

  wants(key) {
    return !this.state.has(key);
  }

  pump() {
    while (this.running < this.parallel) {
      const job = this.nextJob();
      if (!job) return;
      this.running++;
      job()
        .catch(() => {})
        .finally(() => {
          this.running--;
          this.pump();
        });
    }
  }

  // Wraps a download so that it is tried once and its state recorded.
  track(key, start) {
    this.state.set(key, "loading");
    return () =>
      start().then(
        (v) => {
          this.state.set(key, "done");
          return v;
        },
        (e) => {
          this.state.set(key, "error");
          throw e;
        },
      );
  }
}

export function loadImage(url, priority = "auto") {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.decoding = "async";
    img.fetchPriority = priority;
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(url));
    img.src = url;
  });
}

// The next cases' previews go into the HTTP cache (their URLs are immutable), at low priority.
export async function prefetch(urls) {
  let done = 0;
  for (const url of urls || []) {
    try {
      const answer = await fetch(url, { credentials: "same-origin", priority: "low" });
      await answer.arrayBuffer();
      if (answer.ok) done++;
    } catch {
      /* a prefetch that fails costs nothing: the case loads normally when opened */
    }
  }
  return done;
}
