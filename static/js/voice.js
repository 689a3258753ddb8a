// Voice chat on the chat page: the microphone button (docs/protocol.md, "Voice").
// The microphone goes through an AudioWorklet (pcm-worklet.js) to 16 kHz PCM16 frames on the voice
// socket; the server's speech comes back as PCM16 chunks, scheduled back to back on one
// AudioContext so sentences play without gaps, and stopped at once on barge-in. The turn itself
// shows in the chat through the chat socket (chat.js), like a typed message.

const TEXT = {
  listen: "Speak",
  stopListening: "Stop listening",
  listening: "Listening…",
  thinking: "Recognising…",
  micDenied: "The microphone is not available: allow it in your browser to talk.",
  noAudio: "This browser cannot record audio here.",
  lost: "The voice connection was lost.",
};

const ERRORS = {
  voice_busy: "Voice is busy right now: please say that again in a moment.",
  audio_invalid: "The audio could not be read.",
  turn_in_progress: "Please wait until the current reply has finished, then speak again.",
  content_blocked: "That message can't be sent.",
};

// Audio scheduled this far ahead of "now" when playback (re)starts, so the first chunk is not cut.
const PLAY_LEAD_S = 0.05;
// Frames kept while the socket opens (40 ms each): the start of what the user says is not lost.
const MAX_EARLY_FRAMES = 100;

class VoiceChat {
  constructor(button, live) {
    this.button = button;
    this.live = live;
    this.socketPath = button.dataset.voicePath;
    this.workletUrl = button.dataset.workletUrl;
    this.ws = null;
    this.early = [];
    this.context = null;
    this.workletLoaded = false;
    this.stream = null;
    this.source = null;
    this.node = null;
    this.sink = null;
    this.listening = false;
    // Playback
    this.analyser = null;
    this.nextTime = 0;
    this.playing = new Set();
    this.audioRate = 0;
    this.audioReply = null;
    this.mutedReply = null;
    this.scheduledMs = 0;
    this.peak = 0;
    this.meter = 0;
    this.setState("idle");
  }

  // --- Page state, exposed for people and for tests --------------------------------------------

  setState(state) {
    this.button.dataset.state = state;
    const on = state !== "idle";
    this.button.setAttribute("aria-pressed", String(on));
    this.button.setAttribute("aria-label", on ? TEXT.stopListening : TEXT.listen);
    this.button.title = on ? TEXT.stopListening : TEXT.listen;
  }

  showLive(text, kind) {
    this.live.textContent = text;
    this.live.dataset.kind = kind;
    this.live.hidden = !text;
  }

  notify(text, key) {
    if (window.chatsite?.notify) window.chatsite.notify(text, { key });
  }

  // --- Microphone ----------------------------------------------------------------------------

  async toggle() {
    if (this.listening) this.stop();
    else await this.start();
  }

  async start() {
    if (!navigator.mediaDevices?.getUserMedia || !window.AudioWorkletNode) {
      this.notify(TEXT.noAudio, "voice");
      return;
    }
    this.listening = true;
    this.setState("starting");
    // Created inside the click: browsers only let a user gesture start audio.
    if (!this.context) this.context = new AudioContext({ latencyHint: "interactive" });
    const resumed = this.context.resume();
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: {
          channelCount: 1,
          // The bot's own voice must not come back as the user's speech (a false barge-in).
          echoCancellation: true,
          noiseSuppression: true,
          autoGainControl: true,
        },
      });
      await resumed;
      if (!this.workletLoaded) {
        await this.context.audioWorklet.addModule(this.workletUrl);
        this.workletLoaded = true;
      }
    } catch {
      this.listening = false;
      this.releaseMic();
      this.setState("idle");
      this.notify(TEXT.micDenied, "voice");
      return;
    }
    if (!this.listening) {
      this.releaseMic(); // stopped while the browser was asking
      return;
    }
    this.source = this.context.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.context, "pcm-worklet", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      channelCount: 1,
      channelCountMode: "explicit",
      channelInterpretation: "speakers",
    });
    this.node.port.onmessage = (event) => this.sendAudio(event.data);
    // A silent path to the destination keeps the worklet pulled in every browser.
    this.sink = this.context.createGain();
    this.sink.gain.value = 0;
    this.source.connect(this.node).connect(this.sink).connect(this.context.destination);
    this.openSocket();
    this.sendJson({ type: "start", language: null });
    this.setState("listening");
    this.showLive(TEXT.listening, "hint");
  }

  stop() {
    this.listening = false;
    this.node?.port.postMessage("flush");
    // The last frames are posted by the worklet before it is disconnected.
    setTimeout(() => {
      this.releaseMic();
      this.sendJson({ type: "end" });
    }, 60);
    this.setState("idle");
    if (this.live.dataset.kind === "hint") this.showLive("", "");
  }

  releaseMic() {
    this.source?.disconnect();
    this.node?.disconnect();
    this.sink?.disconnect();
    this.stream?.getTracks().forEach((track) => track.stop());
    this.source = this.node = this.sink = this.stream = null;
  }

  // --- The voice socket ----------------------------------------------------------------------

  openSocket() {
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}${this.socketPath}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.addEventListener("open", () => {
      for (const frame of this.early) ws.send(frame);
      this.early = [];
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws) return;
      if (typeof event.data === "string") this.dispatch(JSON.parse(event.data));
      else this.play(event.data);
    });
    ws.addEventListener("close", () => {
      if (ws !== this.ws) return;
      this.ws = null;
      this.early = [];
      if (this.listening) {
        this.stop();
        this.notify(TEXT.lost, "voice");
      }
    });
  }

  send(data) {
    if (this.ws?.readyState === WebSocket.OPEN) {
      this.ws.send(data);
    } else if (this.ws?.readyState === WebSocket.CONNECTING) {
      if (this.early.length < MAX_EARLY_FRAMES) this.early.push(data);
    }
  }

  sendJson(frame) {
    this.send(JSON.stringify(frame));
  }

  sendAudio(buffer) {
    if (this.node) this.send(buffer); // until the microphone is released, flushed frames too
  }

  dispatch(frame) {
    switch (frame.type) {
      case "speech.start":
        this.showLive(TEXT.listening, "hint");
        break;
      case "transcript.partial":
        this.showLive(frame.text, "partial");
        break;
      case "transcript.final":
        // The chat shows the message itself (message.start on the chat socket).
        this.showLive(frame.text, "final");
        break;
      case "message.ack":
        if (this.live.dataset.kind === "final") this.showLive("", "");
        break;
      case "audio.start":
        this.audioRate = frame.sample_rate;
        this.audioReply = frame.reply_id;
        break;
      case "barge_in":
        this.mutedReply = frame.reply_id;
        this.stopPlayback();
        this.button.dataset.bargeIns = String(Number(this.button.dataset.bargeIns || 0) + 1);
        break;
      case "error":
        this.notify(ERRORS[frame.code] || frame.message || frame.code, `voice-${frame.code}`);
        if (this.live.dataset.kind !== "partial") this.showLive("", "");
        break;
      default:
        break; // hello, message.delta/done, audio.done, pong: nothing to do here
    }
  }

  // --- Playback ------------------------------------------------------------------------------

  play(data) {
    if (!this.context || !this.audioRate || this.audioReply === this.mutedReply) return;
    const pcm = new Int16Array(data);
    if (!pcm.length) return;
    const buffer = this.context.createBuffer(1, pcm.length, this.audioRate);
    const samples = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 0x8000;
    if (!this.analyser) {
      this.analyser = this.context.createAnalyser();
      this.analyser.fftSize = 1024;
      this.analyser.connect(this.context.destination);
    }
    const node = this.context.createBufferSource();
    node.buffer = buffer;
    node.connect(this.analyser);
    // Each chunk starts exactly where the previous one ends: no gap, no overlap.
    const now = this.context.currentTime;
    if (this.nextTime < now + 0.005) this.nextTime = now + PLAY_LEAD_S;
    node.start(this.nextTime);
    this.nextTime += buffer.duration;
    this.playing.add(node);
    node.addEventListener("ended", () => {
      this.playing.delete(node);
      if (!this.playing.size) this.button.dataset.speaking = "false";
    });
    this.scheduledMs += buffer.duration * 1000;
    this.button.dataset.scheduledMs = String(Math.round(this.scheduledMs));
    this.button.dataset.speaking = "true";
    this.watchLevel();
  }

  // The loudest sample heard at the output: proof for people and tests that sound came out.
  watchLevel() {
    if (this.meter) return;
    const data = new Float32Array(this.analyser.fftSize);
    this.meter = setInterval(() => {
      this.analyser.getFloatTimeDomainData(data);
      for (const value of data) this.peak = Math.max(this.peak, Math.abs(value));
      this.button.dataset.peak = this.peak.toFixed(3);
      if (!this.playing.size) {
        clearInterval(this.meter);
        this.meter = 0;
      }
    }, 50);
  }

  stopPlayback() {
    for (const node of this.playing) {
      try {
        node.stop();
      } catch {
        // not started yet in some browsers: disconnecting is enough
      }
      node.disconnect();
    }
    this.playing.clear();
    this.nextTime = 0;
    this.button.dataset.speaking = "false";
  }
}

const button = document.getElementById("mic-btn");
const live = document.getElementById("voice-live");
if (button && live) {
  const voice = new VoiceChat(button, live);
  button.addEventListener("click", () => voice.toggle());
  window.chatsiteVoice = voice; // the console and browser tests
}
