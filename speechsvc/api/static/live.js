// GET /live: stream the microphone (or a file) to the live WebSocket (GET /v1/listen, Deepgram's protocol)
// as linear16, and show each channel's captions as they come: interim results grey, finals black.
// The microphone goes through an AudioWorklet (capture.js) at a 16 kHz AudioContext; a file is decoded
// and resampled to 16 kHz by the browser, its channels kept (one party per channel), and sent at real time.
"use strict";

const RATE_HZ = 16000;
const CHUNK_S = 0.1;
const MAX_CHANNELS = 8;
const $ = (id) => document.getElementById(id);
let current = null; // the running stream: {ws, stopAudio}

function setStatus(text) {
  $("status").textContent = text;
}

function running(on) {
  $("start").disabled = on;
  $("stop").disabled = !on;
}

async function listMicrophones() {
  if (!navigator.mediaDevices) return; // not a secure context: no microphone (a file still works)
  const devices = await navigator.mediaDevices.enumerateDevices();
  const select = $("mic");
  const chosen = select.value;
  const options = devices
    .filter((device) => device.kind === "audioinput")
    .map((device, i) => new Option(device.label || `Microphone ${i + 1}`, device.deviceId));
  select.replaceChildren(new Option("default", ""), ...options);
  select.value = chosen;
}

function channelBox(index, count) {
  let box = document.querySelector(`.channel[data-channel="${index}"]`);
  if (!box) {
    box = document.createElement("section");
    box.className = "channel";
    box.dataset.channel = String(index);
    const title = document.createElement("h2");
    title.textContent = count > 1 ? `Channel ${index + 1}` : "Captions";
    const text = document.createElement("p");
    const finals = document.createElement("span");
    finals.className = "finals";
    const interim = document.createElement("span");
    interim.className = "interim";
    text.append(finals, interim);
    box.append(title, text);
    const boxes = [...document.querySelectorAll(".channel")];
    const after = boxes.find((other) => Number(other.dataset.channel) > index);
    $("channels").insertBefore(box, after || null);
  }
  return { finals: box.querySelector(".finals"), interim: box.querySelector(".interim") };
}

function show(message) {
  if (message.type === "Results") {
    const [index, count] = message.channel_index;
    const box = channelBox(index, count);
    const text = message.channel.alternatives[0].transcript;
    if (message.is_final) {
      box.interim.textContent = "";
      if (text) {
        const final = document.createElement("span");
        final.className = "final";
        final.textContent = text + " ";
        box.finals.append(final);
      }
    } else {
      box.interim.textContent = text;
    }
  } else if (message.type === "Error") {
    setStatus(`Error: ${message.description}`);
  } else if (message.type === "Metadata") {
    setStatus(`Done: ${message.duration.toFixed(1)} s of audio (request ${message.request_id}).`);
  }
}

function listenUrl(params) {
  const url = new URL("/v1/listen", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const model = $("model").value.trim();
  const query = { ...params, interim_results: $("interim").checked, punctuate: true };
  if (model) query.model = model;
  for (const [name, value] of Object.entries(query)) url.searchParams.set(name, String(value));
  return url;
}

// A refused upgrade shows the browser no body: ask the same URL over plain HTTP for the reason (a 400 naming
// the parameter, 401, 503 when full); with everything right it answers that it wants the upgrade.
async function refusal(url, key) {
  const plain = new URL(url);
  plain.protocol = location.protocol;
  try {
    const answer = await fetch(plain, { headers: key ? { Authorization: `Token ${key}` } : {} });
    const body = await answer.json();
    return `${answer.status}: ${body.error ? body.error.message : JSON.stringify(body)}`;
  } catch (error) {
    return String(error);
  }
}

function connect(params) {
  const url = listenUrl(params);
  const key = $("key").value.trim();
  // browsers cannot set headers on a WebSocket: the key goes as Deepgram's subprotocol pair
  const ws = key ? new WebSocket(url, ["token", key]) : new WebSocket(url);
  ws.binaryType = "arraybuffer";
  return new Promise((resolve, reject) => {
    ws.onopen = () => {
      ws.onclose = (event) => {
        const reason = event.reason ? `: ${event.reason}` : "";
        if (event.code !== 1000) setStatus(`${$("status").textContent} Closed (${event.code}${reason}).`);
        finish();
      };
      resolve(ws);
    };
    ws.onerror = async () => reject(new Error(`the server refused the stream (${await refusal(url, key)})`));
    ws.onmessage = (event) => show(JSON.parse(event.data));
  });
}

async function startMicrophone() {
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    throw new Error("the microphone needs a secure page: open it over https or on localhost");
  }
  const deviceId = $("mic").value;
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: {
      deviceId: deviceId ? { exact: deviceId } : undefined,
      channelCount: 1,
      echoCancellation: false,
      noiseSuppression: false,
      autoGainControl: false,
    },
  });
  const context = new AudioContext({ sampleRate: RATE_HZ }); // the browser resamples the microphone to it
  const stopAudio = () => {
    stream.getTracks().forEach((track) => track.stop());
    context.close();
  };
  try {
    await listMicrophones(); // their names show once the browser has asked
    await context.audioWorklet.addModule("/live/static/capture.js");
    const ws = await connect({ encoding: "linear16", sample_rate: context.sampleRate, channels: 1 });
    const capture = new AudioWorkletNode(context, "pcm-capture", {
      channelCount: 1,
      channelCountMode: "explicit",
      processorOptions: { chunk: Math.round(context.sampleRate * CHUNK_S), channels: 1 },
    });
    capture.port.onmessage = (event) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(event.data);
    };
    context.createMediaStreamSource(stream).connect(capture);
    capture.connect(context.destination); // its output is silence; connected, it is run
    await context.resume();
    return { ws, stopAudio };
  } catch (error) {
    stopAudio();
    throw error;
  }
}

function interleave(channels) {
  const frames = channels[0].length;
  const pcm = new Int16Array(frames * channels.length);
  channels.forEach((samples, c) => {
    for (let i = 0; i < frames; i++) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      pcm[i * channels.length + c] = s < 0 ? s * 0x8000 : s * 0x7fff;
    }
  });
  return pcm.buffer;
}

async function startFile() {
  const file = $("file").files[0];
  if (!file) throw new Error("choose a file first");
  const audio = await new OfflineAudioContext(1, 1, RATE_HZ).decodeAudioData(await file.arrayBuffer());
  const count = Math.min(audio.numberOfChannels, MAX_CHANNELS);
  const ws = await connect({ encoding: "linear16", sample_rate: RATE_HZ, channels: count, multichannel: count > 1 });
  const channels = Array.from({ length: count }, (_, c) => audio.getChannelData(c));
  const step = Math.round(RATE_HZ * CHUNK_S);
  const started = performance.now();
  let at = 0;
  let timer = null;
  const next = () => {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (at >= audio.length) {
      ws.send(JSON.stringify({ type: "CloseStream" })); // the last finals, Metadata, then a 1000 close
      return;
    }
    ws.send(interleave(channels.map((samples) => samples.subarray(at, at + step))));
    at += step;
    timer = setTimeout(next, Math.max(0, started + (at / RATE_HZ) * 1000 - performance.now()));
  };
  next();
  return { ws, stopAudio: () => clearTimeout(timer) };
}

function finish() {
  if (current) current.stopAudio();
  current = null;
  running(false);
}

$("source").addEventListener("change", () => {
  const file = $("source").value === "file";
  $("file-field").hidden = !file;
  $("mic-field").hidden = file;
});

$("controls").addEventListener("submit", async (event) => {
  event.preventDefault();
  running(true);
  $("channels").replaceChildren();
  setStatus("Connecting…");
  try {
    current = await ($("source").value === "file" ? startFile() : startMicrophone());
    setStatus("Streaming.");
  } catch (error) {
    setStatus(`Not started: ${error.message}`);
    running(false);
  }
});

$("stop").addEventListener("click", () => {
  if (!current) return;
  current.stopAudio();
  setStatus("Stopping: the last finals…");
  if (current.ws.readyState === WebSocket.OPEN) current.ws.send(JSON.stringify({ type: "CloseStream" }));
});

listMicrophones();
