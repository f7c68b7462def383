// A small web app run as Heroku runs it: `web: node server.js` on $HOST:$PORT.
//   GET /        {"app", "version", "built_at", "hits", "uptime"} as JSON
//   GET /hit     adds one to the counter kept in $CORPUS_DATA, answers the same JSON
//   GET /health  200 once the counter's directory is writable
"use strict";
const fs = require("fs");
const http = require("http");
const path = require("path");
const ms = require("ms");

const build = JSON.parse(fs.readFileSync(path.join(__dirname, "dist", "version.json"), "utf8"));
const dataDir = process.env.CORPUS_DATA || path.join(__dirname, "data");
const counter = path.join(dataDir, "hits.json");

function readHits() {
  try {
    return JSON.parse(fs.readFileSync(counter, "utf8")).hits;
  } catch (err) {
    if (err.code === "ENOENT") return 0;
    throw err;
  }
}

function writeHits(hits) {
  // write then rename: a crash never leaves half a file
  const tmp = counter + "." + process.pid + ".tmp";
  fs.writeFileSync(tmp, JSON.stringify({ hits }) + "\n");
  fs.renameSync(tmp, counter);
}

function answer(res, status, body) {
  const text = JSON.stringify(body) + "\n";
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

function state(hits) {
  return { app: "node-app", version: build.version, built_at: build.built_at, hits,
           uptime: ms(Math.round(process.uptime() * 1000)) };
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  try {
    if (url.pathname === "/health") {
      fs.accessSync(dataDir, fs.constants.W_OK);
      return answer(res, 200, { status: "ok", version: build.version });
    }
    if (url.pathname === "/") return answer(res, 200, state(readHits()));
    if (url.pathname === "/hit") {
      const hits = readHits() + 1;
      writeHits(hits);
      return answer(res, 200, state(hits));
    }
    return answer(res, 404, { error: "not found" });
  } catch (err) {
    return answer(res, 500, { error: String(err.message || err) });
  }
});

const port = Number(process.env.PORT || 5000);
const host = process.env.HOST || "127.0.0.1";
server.listen(port, host, () => console.log("node-app " + build.version + " listening on " + host + ":" + port));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
