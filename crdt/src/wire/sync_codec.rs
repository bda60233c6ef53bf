//! Sync messages on the wire (`schemas/sync.fbs`): the one place that converts between
//! [`crate::sync::Message`] and its FlatBuffers form.

use std::sync::Arc;

use flatbuffers::{FlatBufferBuilder, VerifierOptions};

use super::sync_generated::theta::wire::sync as fb;
use super::{DecodeError, check_identifier, invalid, malformed};
use crate::ids::CommandId;
use crate::sync::{Message, Tip};

/// The sync protocol version this code writes and the only one it reads.
pub const SYNC_VERSION: u16 = 1;
/// Largest sync message accepted (a catch-up batch on a direct stream may be large; gossip uses
/// far smaller batches).
pub const MAX_SYNC_BYTES: usize = 8 << 20;

fn options() -> VerifierOptions {
    VerifierOptions {
        max_depth: 8,
        // One table per command in a batch, plus a few.
        max_tables: MAX_SYNC_BYTES / 8,
        max_apparent_size: MAX_SYNC_BYTES + (MAX_SYNC_BYTES / 4),
        ignore_missing_null_terminator: false,
    }
}

/// Encodes a sync message. Deterministic.
pub fn encode_sync(msg: &Message) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let (kind, body) = match msg {
        Message::Summary {
            session_prefix,
            tips,
        } => {
            let tips: Vec<fb::Tip> = tips
                .iter()
                .map(|t| fb::Tip::new(t.author_prefix, t.seq, t.id_prefix))
                .collect();
            let tips = fbb.create_vector(&tips);
            let t = fb::Summary::create(
                &mut fbb,
                &fb::SummaryArgs {
                    session_prefix: *session_prefix,
                    tips: Some(tips),
                },
            );
            (fb::Body::Summary, t.as_union_value())
        }
        Message::Commands { commands, more } => {
            let blob = join_commands(commands.iter().map(|c| &c[..]));
            let commands = fbb.create_vector(&blob);
            let t = fb::Commands::create(
                &mut fbb,
                &fb::CommandsArgs {
                    commands: Some(commands),
                    more: *more,
                },
            );
            (fb::Body::Commands, t.as_union_value())
        }
        Message::Want { ids } => {
            let ids: Vec<fb::Id32> = ids.iter().map(|i| fb::Id32::new(&i.0)).collect();
            let ids = fbb.create_vector(&ids);
            let t = fb::Want::create(&mut fbb, &fb::WantArgs { ids: Some(ids) });
            (fb::Body::Want, t.as_union_value())
        }
    };
    let root = fb::SyncMessage::create(
        &mut fbb,
        &fb::SyncMessageArgs {
            version: SYNC_VERSION,
            body_type: kind,
            body: Some(body),
        },
    );
    fb::finish_sync_message_buffer(&mut fbb, root);
    fbb.finished_data().to_vec()
}

/// Joins commands into one blob, each preceded by its length as a little-endian u32 (the form
/// of a sync batch, and of a gossip batch in the app).
pub fn join_commands<'a>(commands: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut blob = Vec::new();
    for c in commands {
        blob.extend_from_slice(&(c.len() as u32).to_le_bytes());
        blob.extend_from_slice(c);
    }
    blob
}

/// Splits a blob made by [`join_commands`], refusing a truncated length or one past the end.
pub fn split_commands(mut blob: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
    let mut out = Vec::new();
    while !blob.is_empty() {
        let (len, rest) = blob
            .split_first_chunk::<4>()
            .ok_or_else(|| invalid("truncated command length"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(invalid("command length past the end of the batch"));
        }
        let (cmd, rest) = rest.split_at(len);
        out.push(cmd);
        blob = rest;
    }
    Ok(out)
}

/// Decodes a sync message, refusing anything malformed, oversized or of another version. Never
/// panics. Command bytes inside are not checked here: the log verifies each command.
pub fn decode_sync(bytes: &[u8]) -> Result<Message, DecodeError> {
    if bytes.len() > MAX_SYNC_BYTES {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: MAX_SYNC_BYTES,
        });
    }
    check_identifier(bytes, fb::SYNC_MESSAGE_IDENTIFIER)?;
    let m = fb::root_as_sync_message_with_opts(&options(), bytes).map_err(malformed)?;
    if m.version() != SYNC_VERSION {
        return Err(DecodeError::UnsupportedSchemaVersion(m.version()));
    }
    match m.body_type() {
        fb::Body::Summary => {
            let s = m
                .body_as_summary()
                .ok_or_else(|| invalid("summary missing"))?;
            let tips = s
                .tips()
                .iter()
                .map(|t| Tip {
                    author_prefix: t.author_prefix(),
                    seq: t.seq(),
                    id_prefix: t.id_prefix(),
                })
                .collect();
            Ok(Message::Summary {
                session_prefix: s.session_prefix(),
                tips,
            })
        }
        fb::Body::Commands => {
            let c = m
                .body_as_commands()
                .ok_or_else(|| invalid("commands missing"))?;
            let commands = split_commands(c.commands().bytes())?
                .into_iter()
                .map(Arc::<[u8]>::from)
                .collect();
            Ok(Message::Commands {
                commands,
                more: c.more(),
            })
        }
        fb::Body::Want => {
            let w = m.body_as_want().ok_or_else(|| invalid("want missing"))?;
            Ok(Message::Want {
                ids: w
                    .ids()
                    .iter()
                    .map(|i| CommandId(i.bytes().into()))
                    .collect(),
            })
        }
        other => Err(DecodeError::UnknownOpKind(other.0)),
    }
}
