// The build step (`npm run build`): writes dist/version.json, which the server serves.
"use strict";
const fs = require("fs");
const path = require("path");

const version = fs.readFileSync(path.join(__dirname, "VERSION"), "utf8").trim();
const dist = path.join(__dirname, "dist");
fs.mkdirSync(dist, { recursive: true });
fs.writeFileSync(path.join(dist, "version.json"),
  JSON.stringify({ version, built_at: new Date().toISOString() }) + "\n");
console.log("wrote dist/version.json (version " + version + ")");
