//! Reading a response body with a size cap: chunk by chunk, so a server that sends more than
//! the cap (or a small gzip that inflates past it) costs at most `limit` bytes of memory.

/// Why a body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The server announced or sent more than `limit` bytes.
    #[error("response body larger than {limit} bytes: refused")]
    TooLarge { limit: usize },
    /// The connection failed while the body was read (the URL is never included).
    #[error("reading the response body failed: {0}")]
    Transport(String),
}

impl BodyError {
    pub fn is_too_large(&self) -> bool {
        matches!(self, BodyError::TooLarge { .. })
    }
}

/// Reads at most `limit` bytes of `resp`'s body (after content decoding); more is an error.
/// A `Content-Length` above the cap is refused before anything is read.
pub async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| {
        n > limit as u64
            && resp
                .headers()
                .get(reqwest::header::CONTENT_ENCODING)
                .is_none()
    }) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut out = Vec::with_capacity(
        resp.content_length()
            .map_or(8 * 1024, |n| n as usize)
            .min(limit),
    );
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| BodyError::Transport(e.without_url().to_string()))?
    {
        if out.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// [`read_capped`] as text (invalid UTF-8 replaced).
pub async fn read_capped_text(resp: reqwest::Response, limit: usize) -> Result<String, BodyError> {
    let bytes = read_capped(resp, limit).await?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot HTTP server answering `body`, with or without a Content-Length.
    async fn serve(body: Vec<u8>, content_length: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let head = if content_length {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                )
            } else {
                "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_string()
            };
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(&body).await;
            let _ = s.shutdown().await;
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn bodies_past_the_cap_are_refused_with_or_without_a_length() {
        for announced in [true, false] {
            let url = serve(vec![b'x'; 5000], announced).await;
            let resp = reqwest::get(&url).await.unwrap();
            let e = read_capped(resp, 4096).await.unwrap_err();
            assert!(e.is_too_large(), "{e}");
            assert_eq!(
                e.to_string(),
                "response body larger than 4096 bytes: refused"
            );

            let url = serve(vec![b'y'; 4096], announced).await;
            let resp = reqwest::get(&url).await.unwrap();
            assert_eq!(
                read_capped_text(resp, 4096).await.unwrap(),
                "y".repeat(4096)
            );
        }
    }
}
