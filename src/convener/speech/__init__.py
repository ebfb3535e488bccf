"""convener.speech: recognition (ASR), synthesis (TTS) and voice activity detection (VAD).

Interfaces: ``asr`` (AsrProvider/AsrSession and events), ``tts`` (TtsProvider, TtsChunk),
``vad`` (Vad, SileroVad, EnergyVad, Endpointer). Providers: ``whisper_asr`` (offline default),
``deepgram_live`` / ``deepgram_flux`` / ``deepgram_tts`` (cloud, over ``deepgram_stream`` and
``deepgram_common``), ``hibari_tts`` (offline default), ``espeak_tts`` (espeak-ng and flite).
``fallback_asr`` / ``fallback_tts`` put an offline provider behind a primary one; ``registry``
builds everything from ``SpeechSettings`` (``settings``). ``channel`` simulates the phone leg,
``wer`` scores text, ``workers`` is the thread pool for model work, ``commands`` adds
``convener speech test``.
"""
