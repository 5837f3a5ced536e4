"""Cross-request batching: the VAD chunks of many channels and many jobs go through CTranslate2 together.

faster-whisper's BatchedInferencePipeline batches the chunks of one file. Here every channel of every
running job is cut into the same VAD chunks (up to 30 s of speech each) and feature-extracted on its
job's own thread (`prepare_channel`); the chunks wait in one queue per job, and the batcher's runners
take them round-robin across jobs into batches of up to `batch_size`: one encoder call, one `generate`
call and one alignment call per batch, whatever job each chunk came from. Results go back to each
chunk's future; `finish_channel` maps them to the channel's original timeline.

The decoding itself is the library's (`generate_segment_batched`, `_split_segments_by_timestamps`,
`find_alignment`, `add_word_timestamps`), so a chunk decodes the same whichever batch it lands in: the
one piece of state the library carries from chunk to chunk (the end of the last word, for its
word-after-a-pause heuristic) starts at each chunk's own offset instead, so the result does not depend
on what else was in the batch.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from speechsvc.asr.engine import SAMPLE_RATE_HZ, ChannelTranscript, TranscribeOptions, to_segment
from speechsvc.errors import JobCanceled

log = logging.getLogger(__name__)

CHUNK_S = 30  # Whisper's window: a VAD chunk holds at most this much speech
VAD_MIN_SILENCE_MS = 160  # what BatchedInferencePipeline uses

# (channel position, seconds of that channel transcribed so far); may raise JobCanceled to stop
ChannelProgress = Callable[[int, float], None]


@dataclass
class PreparedChannel:
    """One channel cut into VAD chunks, with everything the decoder needs to batch them with others."""

    duration_s: float
    speech_s: float
    clips: list[dict[str, int]]  # the speech regions, in samples, for mapping back to the timeline
    metadata: list[dict[str, Any]]  # per chunk: offset and duration in speech-only time
    features: list[npt.NDArray[np.float32]]  # per chunk: log-mel, padded to 30 s
    language: str
    language_probability: float
    tokenizer: Any
    options: Any  # faster_whisper TranscriptionOptions
    group: Hashable  # chunks batch together only when this is equal (same prompt, language, decoder settings)


@dataclass
class _Chunk:
    job_key: str
    channel: PreparedChannel
    index: int
    future: Future[list[dict[str, Any]]] = field(default_factory=Future)


VAD_BLOCK_S = 600.0  # a longer channel is searched for speech block by block (bounded memory)


def _speech_clips(audio: npt.NDArray[np.float32], vad: Any, find: Any) -> list[dict[str, int]]:
    """The library's VAD clips; on a channel longer than VAD_BLOCK_S (a memory-mapped file), block by
    block, so that the channel is never copied whole (a clip cut at a block boundary stays cut)."""
    block = int(VAD_BLOCK_S * SAMPLE_RATE_HZ)
    if len(audio) <= block:
        return list(find(np.asarray(audio), vad)) if len(audio) else []
    clips: list[dict[str, int]] = []
    for offset in range(0, len(audio), block):
        for clip in find(np.asarray(audio[offset : offset + block]), vad):
            clips.append({"start": clip["start"] + offset, "end": clip["end"] + offset})
    return clips


def prepare_channel(
    model: Any, audio: npt.NDArray[np.float32], options: TranscribeOptions
) -> PreparedChannel:
    """VAD, chunking, feature extraction and (multilingual models, no language given) language detection:
    the CPU work of a channel, done before its chunks are queued for the decoder."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens
    from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

    window = CHUNK_S * SAMPLE_RATE_HZ
    if options.vad:
        vad = VadOptions(max_speech_duration_s=CHUNK_S, min_silence_duration_ms=VAD_MIN_SILENCE_MS)
        clips = _speech_clips(audio, vad, get_speech_timestamps)
    else:  # no VAD: fixed 30 s windows
        clips = [{"start": s, "end": min(s + window, len(audio))} for s in range(0, len(audio), window)]
    chunks, metadata = collect_chunks(audio, clips, max_duration=CHUNK_S) if clips else ([], [])
    features = [_pad(model.feature_extractor(chunk)[..., :-1]) for chunk in chunks]

    multilingual = bool(model.model.is_multilingual)
    language, probability = (options.language if multilingual else None) or "en", 1.0
    if multilingual and options.language is None and features:
        language, probability, _ = model.detect_language(
            features=np.concatenate(features, axis=1), language_detection_segments=1
        )
    task = options.task if multilingual else "transcribe"
    tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task=task, language=language)
    temperature = options.temperature if options.temperature is not None else 0.0
    decoder = TranscriptionOptions(
        beam_size=options.beam_size,
        best_of=5,
        patience=1,
        length_penalty=1,
        repetition_penalty=1,
        no_repeat_ngram_size=0,
        log_prob_threshold=-1.0,
        no_speech_threshold=0.6,
        compression_ratio_threshold=2.4,
        temperatures=[temperature],
        initial_prompt=options.prompt,
        prefix=None,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        prepend_punctuations="\"'“¿([{-",
        append_punctuations="\"'.。,，!！?？:：”)]}、",
        max_new_tokens=None,
        hotwords=options.hotwords,
        word_timestamps=options.word_timestamps,
        hallucination_silence_threshold=None,
        condition_on_previous_text=False,
        clip_timestamps=clips,
        prompt_reset_on_temperature=0.5,
        multilingual=False,
        without_timestamps=True,
        max_initial_timestamp=0.0,
    )
    group = (
        language,
        task,
        options.beam_size,
        options.word_timestamps,
        options.prompt,
        options.hotwords,
        temperature,
    )
    return PreparedChannel(
        duration_s=len(audio) / SAMPLE_RATE_HZ,
        speech_s=sum(c["end"] - c["start"] for c in clips) / SAMPLE_RATE_HZ,
        clips=clips,
        metadata=metadata,
        features=features,
        language=language,
        language_probability=round(float(probability), 4),
        tokenizer=tokenizer,
        options=decoder,
        group=group,
    )


def _pad(features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    from faster_whisper.audio import pad_or_trim

    return pad_or_trim(features)  # type: ignore[no-any-return]


def finish_channel(prepared: PreparedChannel, outputs: list[list[dict[str, Any]]]) -> ChannelTranscript:
    """The decoded chunks of one channel, in order, on the channel's own timeline."""
    from faster_whisper.transcribe import Segment, Word, restore_speech_timestamps

    temperature = prepared.options.temperatures[0]
    segments = (
        Segment(
            id=0,
            seek=sub["seek"],
            start=round(sub["start"], 3),
            end=round(sub["end"], 3),
            text=sub["text"],
            tokens=sub["tokens"],
            avg_logprob=sub["avg_logprob"],
            compression_ratio=sub["compression_ratio"],
            no_speech_prob=sub["no_speech_prob"],
            words=[Word(**word) for word in sub["words"]] if prepared.options.word_timestamps else None,
            temperature=temperature,
        )
        for chunk in outputs
        for sub in chunk
    )
    return ChannelTranscript(
        language=prepared.language,
        language_probability=prepared.language_probability,
        duration_s=round(prepared.duration_s, 3),
        speech_s=round(prepared.speech_s, 3),
        segments=[to_segment(s) for s in restore_speech_timestamps(segments, prepared.clips, SAMPLE_RATE_HZ)],
    )


class _Aligned:
    """WhisperModel as add_word_timestamps sees it, with one chunk's alignment already computed: the
    batch is aligned in one call, the per-chunk word clean-up then runs chunk by chunk."""

    def __init__(self, model: Any, alignment: list[dict[str, Any]]) -> None:
        self.frames_per_second = model.frames_per_second
        self._alignment = alignment

    def find_alignment(self, *_: Any) -> list[list[dict[str, Any]]]:
        return [self._alignment]


def decode_batch(model: Any, pipeline: Any, chunks: list[_Chunk]) -> list[list[dict[str, Any]]]:
    """One encoder, one generate and one alignment call for chunks of any channels that share a group."""
    from faster_whisper.transcribe import WhisperModel, get_compression_ratio

    first = chunks[0].channel
    tokenizer, options = first.tokenizer, first.options
    features = np.stack([c.channel.features[c.index] for c in chunks])
    encoder_output, outputs = pipeline.generate_segment_batched(features, tokenizer, options)
    results: list[list[dict[str, Any]]] = []
    sizes: list[int] = []
    for chunk, output in zip(chunks, outputs, strict=True):
        meta = chunk.channel.metadata[chunk.index]
        size = int(np.ceil(meta["duration"]) * model.frames_per_second)
        sizes.append(size)
        subsegments, _, _ = model._split_segments_by_timestamps(
            tokenizer=tokenizer,
            tokens=output["tokens"],
            time_offset=meta["offset"],
            segment_size=size,
            segment_duration=meta["duration"],
            seek=0,
        )
        results.append(
            [
                {
                    "text": (text := tokenizer.decode(sub["tokens"])),
                    "avg_logprob": output["avg_logprob"],
                    "no_speech_prob": output["no_speech_prob"],
                    "tokens": sub["tokens"],
                    "start": sub["start"],
                    "end": sub["end"],
                    "compression_ratio": get_compression_ratio(text),
                    "seek": int(meta["offset"] * model.frames_per_second),
                }
                for sub in subsegments
            ]
        )
    if options.word_timestamps:
        text_tokens = [[t for sub in chunk for t in sub["tokens"] if t < tokenizer.eot] for chunk in results]
        alignments = model.find_alignment(tokenizer, text_tokens, encoder_output, sizes)
        for chunk, result, alignment in zip(chunks, results, alignments, strict=True):
            if result:
                WhisperModel.add_word_timestamps(
                    _Aligned(model, alignment),
                    [result],
                    tokenizer,
                    None,
                    None,
                    options.prepend_punctuations,
                    options.append_punctuations,
                    chunk.channel.metadata[chunk.index]["offset"],
                )
    return results


Decode = Callable[[list[_Chunk]], list[list[dict[str, Any]]]]


def model_decoder(model: Any) -> Decode:
    """decode_batch on this model."""
    from faster_whisper import BatchedInferencePipeline

    pipeline = BatchedInferencePipeline(model)
    return lambda chunks: decode_batch(model, pipeline, chunks)


class ChunkBatcher:
    """Runner threads that decode queued chunks in batches, taking them round-robin across jobs."""

    def __init__(
        self, decode: Decode, batch_size: int, runners: int, name: str = "batcher", start: bool = True
    ) -> None:
        self.decode = decode
        self.batch_size = batch_size
        self._queues: OrderedDict[str, deque[_Chunk]] = OrderedDict()
        self._ready = threading.Condition()
        self._closed = False
        # what ran: batches, chunks in them, and batches that mixed chunks of several jobs
        self.batches = self.chunks = self.mixed_batches = 0
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{i}", daemon=True) for i in range(runners)
        ]
        if start:
            self.start()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, job_key: str, channel: PreparedChannel) -> list[Future[list[dict[str, Any]]]]:
        chunks = [_Chunk(job_key, channel, index) for index in range(len(channel.features))]
        with self._ready:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            if chunks:
                self._queues.setdefault(job_key, deque()).extend(chunks)
                self._ready.notify(len(chunks))
        return [chunk.future for chunk in chunks]

    def cancel(self, job_key: str) -> None:
        """Drop a job's chunks still queued (it was canceled or failed); chunks being decoded finish."""
        with self._ready:
            for chunk in self._queues.pop(job_key, ()):
                _cancel(chunk.future)

    def _next_batch(self) -> list[_Chunk] | None:
        with self._ready:
            while not self._queues and not self._closed:
                self._ready.wait()
            if not self._queues:
                return None
            head = next(iter(self._queues))
            group = self._queues[head][0].channel.group
            # no more than this runner's share of what is queued, so that the other runners get work too
            # (on the CPU, one runner with a big batch while the other idles is slower than two halves)
            queued = sum(len(queue) for queue in self._queues.values())
            size = min(self.batch_size, -(-queued // len(self._threads)))
            batch: list[_Chunk] = []
            taken = True
            while taken and len(batch) < size:  # one chunk per job per pass: round-robin
                taken = False
                for queue in self._queues.values():
                    match = next((c for c in queue if c.channel.group == group), None)
                    if match is not None:
                        queue.remove(match)
                        batch.append(match)
                        taken = True
                        if len(batch) == size:
                            break
            for key in [key for key, queue in self._queues.items() if not queue]:
                del self._queues[key]
            if head in self._queues:
                self._queues.move_to_end(head)  # the next batch starts with another job's chunk
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            batch = [chunk for chunk in batch if chunk.future.set_running_or_notify_cancel()]
            if batch:
                self._decode(batch)

    def _decode(self, batch: list[_Chunk]) -> None:
        try:
            results = self.decode(batch)
        except Exception as exc:
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            # one bad chunk must not fail the other jobs in its batch: decode each alone to find it
            log.warning("event=batch_error chunks=%d error=%r; retrying them one by one", len(batch), exc)
            for chunk in batch:
                try:
                    chunk.future.set_result(self.decode([chunk])[0])
                except Exception as alone:
                    chunk.future.set_exception(alone)
            return
        with self._ready:
            self.batches += 1
            self.chunks += len(batch)
            self.mixed_batches += len({chunk.job_key for chunk in batch}) > 1
        for chunk, result in zip(batch, results, strict=True):
            chunk.future.set_result(result)

    def close(self) -> None:
        """Stop taking chunks; queued ones are cancelled, batches being decoded finish."""
        with self._ready:
            self._closed = True
            for queue in self._queues.values():
                for chunk in queue:
                    _cancel(chunk.future)
            self._queues.clear()
            self._ready.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join()


def _cancel(future: Future[Any]) -> None:
    # cancel() alone does not wake concurrent.futures.wait(); see FairPool.close
    if future.cancel():
        future.set_running_or_notify_cancel()


def transcribe_channels(
    model: Any,
    batcher: ChunkBatcher,
    job_key: str,
    channels: list[npt.NDArray[np.float32]],
    options: TranscribeOptions,
    on_progress: ChannelProgress,
) -> list[ChannelTranscript]:
    """Every channel of one job through the shared batcher. Each channel's chunks are queued as soon as
    it is prepared, so preparing the next channel overlaps with decoding this one."""
    pending: dict[Future[list[dict[str, Any]]], tuple[int, int]] = {}
    prepared: list[PreparedChannel] = []
    done_speech = [0.0] * len(channels)
    at_s = [0.0] * len(channels)
    try:
        for position, audio in enumerate(channels):
            channel = prepare_channel(model, audio, options)
            prepared.append(channel)
            for index, future in enumerate(batcher.submit(job_key, channel)):
                pending[future] = (position, index)
            on_progress(position, 0.0)  # raises JobCanceled if the job was deleted meanwhile
        outputs: list[list[list[dict[str, Any]]]] = [[[] for _ in c.features] for c in prepared]
        waiting = set(pending)
        while waiting:
            finished, waiting = wait(waiting, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in finished:
                if future.cancelled():
                    raise JobCanceled()  # the batcher was closed: the service is shutting down
                position, index = pending[future]
                outputs[position][index] = future.result()
                channel = prepared[position]
                done_speech[position] += channel.metadata[index]["duration"]
                share = done_speech[position] / channel.speech_s if channel.speech_s else 1.0
                at_s[position] = min(1.0, share) * channel.duration_s
                on_progress(position, at_s[position])
            if not finished:
                on_progress(0, at_s[0])  # no news, but a deleted job stops waiting here
    finally:
        batcher.cancel(job_key)
    return [finish_channel(channel, outputs[position]) for position, channel in enumerate(prepared)]
