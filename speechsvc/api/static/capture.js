// The AudioWorklet of /live: the microphone's samples as interleaved linear16, posted in chunks of
// `processorOptions.chunk` frames (about 100 ms) to the page, which sends each as one binary frame.
class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.chunk = options.processorOptions.chunk;
    this.channels = options.processorOptions.channels;
    this.pcm = new Int16Array(this.chunk * this.channels);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true; // nothing connected (yet)
    const frames = input[0].length;
    let offset = 0;
    while (offset < frames) {
      const take = Math.min(frames - offset, this.chunk - this.filled);
      for (let c = 0; c < this.channels; c++) {
        const samples = input[Math.min(c, input.length - 1)];
        for (let i = 0; i < take; i++) {
          const s = Math.max(-1, Math.min(1, samples[offset + i]));
          this.pcm[(this.filled + i) * this.channels + c] = s < 0 ? s * 0x8000 : s * 0x7fff;
        }
      }
      this.filled += take;
      offset += take;
      if (this.filled === this.chunk) {
        this.port.postMessage(this.pcm.buffer, [this.pcm.buffer]);
        this.pcm = new Int16Array(this.chunk * this.channels);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
