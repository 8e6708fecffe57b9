//! Whose fault a failed request is, and what the client is told.
//!
//! Passive health must only count what a peer did: a client that stalls its
//! body, a pooled connection the peer had already closed, or this process
//! running out of file descriptors are nobody's failure but their own, and
//! must not take a healthy peer DOWN.

use crate::resources::is_exhausted;
use pingora_error::{Error, ErrorSource, ErrorType};
use std::io;

/// A peer, or the client, took too long.
pub fn is_timeout(error: &Error) -> bool {
    matches!(
        error.etype(),
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
    )
}

/// The innermost I/O error under `error`, if it is one.
fn io_cause(error: &Error) -> Option<&io::Error> {
    error.root_cause().downcast_ref::<io::Error>()
}

/// The connection to the peer broke before it answered: what a pooled
/// connection that the peer closed while idle looks like.
pub fn is_broken_connection(error: &Error) -> bool {
    matches!(
        error.etype(),
        ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
    )
}

/// Whether the request may not have left at all: writing it failed.
pub fn failed_while_sending(error: &Error) -> bool {
    matches!(error.etype(), ErrorType::WriteError)
}

/// The client's bytes were refused by a check of the client stream (a
/// malformed chunked body); the reason, for the 400.
pub fn client_stream_refusal(error: &Error) -> Option<String> {
    io_cause(error)
        .filter(|e| e.kind() == io::ErrorKind::InvalidData)
        .map(|e| e.to_string())
}

/// The status to answer an error with (0: the client is gone, send
/// nothing).
pub fn status_of(error: &Error) -> u16 {
    match error.etype() {
        ErrorType::HTTPStatus(code) => *code,
        _ => match error.esource() {
            _ if is_exhausted(error) => 503,
            ErrorSource::Upstream if is_timeout(error) => 504,
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream if client_stream_refusal(error).is_some() => 400,
            ErrorSource::Downstream if is_timeout(error) => 408,
            ErrorSource::Downstream => match error.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

/// The detail shown to the client after the status line, for errors that
/// carry one meant for it.
pub fn detail_of(error: &Error) -> Option<String> {
    match error.etype() {
        ErrorType::HTTPStatus(_) => error.context.as_ref().map(|c| c.as_str().to_string()),
        _ if is_exhausted(error) => Some("switchyard is out of local resources".into()),
        _ => client_stream_refusal(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn because(etype: ErrorType, cause: io::Error) -> Box<Error> {
        Error::because(etype, "test", cause)
    }

    #[test]
    fn a_full_descriptor_table_gets_503() {
        let emfile = because(
            ErrorType::ConnectError,
            io::Error::from_raw_os_error(libc::EMFILE),
        );
        assert_eq!(status_of(&emfile), 503);
    }

    #[test]
    fn statuses_follow_the_source() {
        let mut timeout = Error::new(ErrorType::ReadTimedout);
        timeout.as_up();
        assert_eq!(status_of(&timeout), 504);
        timeout.as_down();
        assert_eq!(status_of(&timeout), 408, "a client that stalls");
        let mut malformed = because(
            ErrorType::ReadError,
            io::Error::new(io::ErrorKind::InvalidData, "bare LF in a chunk extension"),
        );
        malformed.as_down();
        assert_eq!(status_of(&malformed), 400);
        assert_eq!(
            detail_of(&malformed).as_deref(),
            Some("bare LF in a chunk extension")
        );
        let mut gone = Error::new(ErrorType::ConnectionClosed);
        gone.as_down();
        assert_eq!(status_of(&gone), 0);
    }
}
