"""The one exception hierarchy. Each class carries its HTTP status, type and code; the docstring is the
default message. One middleware (speechsvc.api.middleware) renders them as the JSON error envelope."""

from __future__ import annotations


class SpeechsvcError(Exception):
    """Internal error."""

    status = 500
    type = "internal_error"
    code = "internal_error"

    def __init__(
        self, message: str | None = None, *, param: str | None = None, extra: dict[str, object] | None = None
    ) -> None:
        self.message = message or (self.__doc__ or self.code).strip()
        self.param = param
        self.extra = extra or {}  # fields beside "error" in the body, e.g. an upload's received_bytes
        super().__init__(self.message)

    def to_body(self, request_id: str) -> dict[str, object]:
        return {
            "error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param},
            **self.extra,
            "request_id": request_id,
        }

    def to_deepgram_body(self, request_id: str) -> dict[str, object]:
        """The envelope with Deepgram's own error fields beside it (`err_code`, `err_msg`; `request_id`
        is already there), for the Deepgram dialect's clients."""
        err_code = DEEPGRAM_ERR_CODES.get(self.status, self.code.upper())
        return {**self.to_body(request_id), "err_code": err_code, "err_msg": self.message}


# Deepgram's err_code for an HTTP status, as its API answers them; others carry our code in capitals.
DEEPGRAM_ERR_CODES = {
    400: "Bad Request",
    401: "INVALID_AUTH",
    403: "INSUFFICIENT_PERMISSIONS",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
}


class InvalidRequest(SpeechsvcError):
    """The request is invalid."""

    status = 400
    type = "invalid_request"
    code = "invalid_request"


class InvalidChannelLayout(InvalidRequest):
    """channel_layout must look like [stream].channel[,[stream].channel], zero-based, no duplicates."""

    code = "invalid_channel_layout"


class InvalidCallbackUrl(InvalidRequest):
    """The callback must be an absolute http or https URL to an allowed address."""

    code = "invalid_callback_url"


class UnsupportedLanguage(InvalidRequest):
    """The model cannot transcribe this language."""

    code = "unsupported_language"


class DiarizationUnavailable(InvalidRequest):
    """Speaker diarization is not available on this server: send diarize=false (or leave it out)."""

    code = "diarization_unavailable"


class InvalidMediaUrl(InvalidRequest):
    """The url must be an absolute http or https URL to an allowed address."""

    code = "invalid_url"


class MediaFetchFailed(InvalidRequest):
    """The audio at the url could not be fetched."""

    code = "url_fetch_failed"


class UnsupportedValue(InvalidRequest):
    """This server cannot honour this value of the parameter."""

    code = "unsupported_value"


class MissingBody(InvalidRequest):
    """The request body is empty: send the audio bytes as the body."""

    code = "missing_body"


class AuthenticationError(SpeechsvcError):
    """A valid API key is required."""

    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class NotFound(SpeechsvcError):
    """Not found."""

    status = 404
    type = "not_found"
    code = "not_found"


class RequestNotFound(NotFound):
    """No request with this id."""

    code = "request_not_found"


class ModelNotFound(NotFound):
    """No such model; GET /v1/models lists the available ones."""

    code = "model_not_found"


class MethodNotAllowed(SpeechsvcError):
    """This method is not allowed on this endpoint."""

    status = 405
    type = "invalid_request"
    code = "method_not_allowed"


class Conflict(SpeechsvcError):
    """The request conflicts with the state of the resource."""

    status = 409
    type = "conflict"
    code = "not_cancelable"


class PayloadTooLarge(SpeechsvcError):
    """The upload is larger than the server accepts."""

    status = 413
    type = "payload_too_large"
    code = "file_too_large"


class AudioTooLong(PayloadTooLarge):
    """The decoded audio is longer than the server accepts."""

    code = "audio_too_long"


class UnsupportedMediaType(SpeechsvcError):
    """This media type or container is not accepted."""

    status = 415
    type = "unsupported_media_type"
    code = "unsupported_media_type"


class UnprocessableAudio(SpeechsvcError):
    """The audio could not be processed."""

    status = 422
    type = "unprocessable_audio"
    code = "undecodable_audio"


class UndecodableAudio(UnprocessableAudio):
    """The body could not be decoded as audio."""

    code = "undecodable_audio"


class NoAudioStream(UnprocessableAudio):
    """The file has no audio stream."""

    code = "no_audio_stream"


class ChannelOutOfRange(UnprocessableAudio):
    """channel_layout selects a stream or channel that the file does not have."""

    code = "channel_out_of_range"


class TooManyChannels(UnprocessableAudio):
    """The file has more audio channels than the server accepts (--max-channels)."""

    code = "too_many_channels"


class EmptyAudio(UnprocessableAudio):
    """The audio stream holds no samples."""

    code = "empty_audio"


class RateLimited(SpeechsvcError):
    """Too many requests for this key; retry after the Retry-After seconds."""

    status = 429
    type = "rate_limit"
    code = "rate_limit_exceeded"

    def __init__(self, message: str | None = None, *, retry_after_s: int, param: str | None = None) -> None:
        super().__init__(message, param=param)
        self.retry_after_s = retry_after_s


class KeyUploadsFull(RateLimited):
    """This key's unfinished uploads hold their share of bytes (--max-upload-bytes-per-key); complete or
    delete some first."""

    code = "key_uploads_full"

    def __init__(
        self, message: str | None = None, *, retry_after_s: int = 60, param: str | None = None
    ) -> None:
        super().__init__(message, retry_after_s=retry_after_s, param=param)


class KeyQueueFull(RateLimited):
    """This key already has its share of waiting jobs (--max-queue-per-key); retry when some have run."""

    code = "key_queue_full"

    def __init__(
        self, message: str | None = None, *, retry_after_s: int = 30, param: str | None = None
    ) -> None:
        super().__init__(message, retry_after_s=retry_after_s, param=param)


class Unavailable(SpeechsvcError):
    """The service cannot take this request now; retry later."""

    status = 503
    type = "unavailable"
    code = "model_loading"
    retry_after_s = 5


class StoreUnavailable(Unavailable):
    """The job database cannot be reached; retry later."""

    code = "store_unavailable"
    retry_after_s = 5


class QueueFull(Unavailable):
    """Too many jobs are waiting; retry later."""

    code = "queue_full"
    retry_after_s = 30


class InsufficientStorage(SpeechsvcError):
    """The server's disk budget for audio is used up (--max-disk-bytes); retry later."""

    status = 507
    type = "unavailable"
    code = "insufficient_storage"
    retry_after_s = 60


class DecodedTooLarge(PayloadTooLarge):
    """The selected channels, decoded, are larger than one job may be (--max-decoded-bytes)."""

    code = "decoded_too_large"


class NotReady(Conflict):
    """The job has no result: it is not finished, failed or was canceled."""

    code = "result_not_ready"


class TranscriptionFailed(UnprocessableAudio):
    """The transcription failed."""

    code = "transcription_failed"


class Timeout(SpeechsvcError):
    """The transcription did not finish in time."""

    status = 504
    type = "unavailable"
    code = "timeout"


class JobCanceled(Exception):
    """Raised inside the pipeline when its job was canceled or deleted while running."""


class LiveStreamsFull(Unavailable):
    """The server has as many live streams open as it takes (--max-live-streams); retry later."""

    code = "live_streams_full"
    retry_after_s = 5


class LiveNotServed(SpeechsvcError):
    """This node serves the API only (--no-worker): live streams need the model; connect to a node that
    runs the model (README, "Live streams")."""

    status = 503
    type = "unavailable"
    code = "live_not_served"


class LiveStreamError(SpeechsvcError):
    """The live stream cannot go on."""

    close_code = 1011  # the WebSocket close code that goes with it


class LiveUndecodableAudio(LiveStreamError):
    """The stream's audio cannot be decoded."""

    status = 422
    type = "unprocessable_audio"
    code = "undecodable_audio"
    close_code = 1008


class LiveBufferFull(LiveStreamError):
    """The client sends audio faster than the server decodes it, beyond the buffer (--live-buffer-s)."""

    status = 429
    type = "rate_limit"
    code = "live_buffer_full"
    close_code = 1008


class LiveIdle(LiveStreamError):
    """No audio and no KeepAlive within the idle timeout (--live-idle-timeout-s)."""

    status = 408
    type = "timeout"
    code = "idle_timeout"
    close_code = 1011
