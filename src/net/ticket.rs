//! Session tickets: the string a user hands over to let someone join.
//!
//! A ticket names the session (its genesis command id), the addresses of one or more peers in it,
//! and optionally an invite capability signed by an admin (role and expiry, see
//! `theta_crdt::invite`). Its string form is iroh-tickets' "kind prefix + base32" (`theta…`).
//!
//! Byte layout (version 1), all integers little-endian:
//! `version:u8 ‖ session:32 ‖ peers:u8 ‖ peer* ‖ invite_flag:u8 ‖ invite:178?` where
//! `peer = id:32 ‖ addrs:u8 ‖ addr*` and `addr = 0 ‖ ipv4:4 ‖ port:2 | 1 ‖ ipv6:16 ‖ port:2 |
//! 2 ‖ len:u16 ‖ relay url`. Anything else, a truncation, trailing bytes or a bad key, is an error.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use anyhow::{Result, anyhow, bail};
use iroh::{EndpointAddr, EndpointId, RelayUrl, TransportAddr};
use iroh_tickets::{ParseError, Ticket};
use theta_crdt::ids::CommandId;
use theta_crdt::invite::{SIGNED_CAPABILITY_BYTES, SignedCapability};

const VERSION: u8 = 1;
/// Most peers one ticket lists.
pub const MAX_TICKET_PEERS: usize = 16;

/// A session ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionTicket {
    /// The session.
    pub session: CommandId,
    /// Peers to dial.
    pub peers: Vec<EndpointAddr>,
    /// An invite to redeem, if the ticket carries one.
    pub invite: Option<SignedCapability>,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("the ticket is truncated");
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.take(1)?[0])
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}

impl SessionTicket {
    fn to_bytes(&self) -> Vec<u8> {
        let mut b = vec![VERSION];
        b.extend_from_slice(&self.session.0);
        let peers = &self.peers[..self.peers.len().min(MAX_TICKET_PEERS)];
        b.push(peers.len() as u8);
        for p in peers {
            b.extend_from_slice(p.id.as_bytes());
            let addrs: Vec<&TransportAddr> = p
                .addrs
                .iter()
                .filter(|a| a.is_ip() || a.is_relay())
                .take(u8::MAX as usize)
                .collect();
            b.push(addrs.len() as u8);
            for a in addrs {
                match a {
                    TransportAddr::Ip(SocketAddr::V4(s)) => {
                        b.push(0);
                        b.extend_from_slice(&s.ip().octets());
                        b.extend_from_slice(&s.port().to_le_bytes());
                    }
                    TransportAddr::Ip(SocketAddr::V6(s)) => {
                        b.push(1);
                        b.extend_from_slice(&s.ip().octets());
                        b.extend_from_slice(&s.port().to_le_bytes());
                    }
                    TransportAddr::Relay(url) => {
                        let s = url.to_string();
                        b.push(2);
                        b.extend_from_slice(&(s.len() as u16).to_le_bytes());
                        b.extend_from_slice(s.as_bytes());
                    }
                    _ => {}
                }
            }
        }
        match &self.invite {
            Some(i) => {
                b.push(1);
                b.extend_from_slice(&i.to_bytes());
            }
            None => b.push(0),
        }
        b
    }

    fn from_bytes(bytes: &[u8]) -> Result<SessionTicket, &'static str> {
        let mut r = Reader(bytes);
        if r.u8()? != VERSION {
            return Err("the ticket is of an unknown version");
        }
        let session = CommandId(r.arr::<32>()?);
        let n = r.u8()? as usize;
        if n == 0 || n > MAX_TICKET_PEERS {
            return Err("the ticket lists no peers, or too many");
        }
        let mut peers = Vec::with_capacity(n);
        for _ in 0..n {
            let id = EndpointId::from_bytes(&r.arr::<32>()?)
                .map_err(|_| "the ticket holds an invalid peer key")?;
            let mut addrs = Vec::new();
            for _ in 0..r.u8()? {
                addrs.push(match r.u8()? {
                    0 => {
                        let ip = Ipv4Addr::from(r.arr::<4>()?);
                        let port = u16::from_le_bytes(r.arr::<2>()?);
                        TransportAddr::Ip(SocketAddr::new(IpAddr::V4(ip), port))
                    }
                    1 => {
                        let ip = Ipv6Addr::from(r.arr::<16>()?);
                        let port = u16::from_le_bytes(r.arr::<2>()?);
                        TransportAddr::Ip(SocketAddr::new(IpAddr::V6(ip), port))
                    }
                    2 => {
                        let len = u16::from_le_bytes(r.arr::<2>()?) as usize;
                        let s = std::str::from_utf8(r.take(len)?)
                            .map_err(|_| "the ticket holds a relay url that is not text")?;
                        TransportAddr::Relay(
                            RelayUrl::from_str(s)
                                .map_err(|_| "the ticket holds an invalid relay url")?,
                        )
                    }
                    _ => return Err("the ticket holds an unknown kind of address"),
                });
            }
            peers.push(EndpointAddr::from_parts(id, addrs));
        }
        let invite = match r.u8()? {
            0 => None,
            1 => Some(
                SignedCapability::from_bytes(r.take(SIGNED_CAPABILITY_BYTES)?)
                    .map_err(|_| "the ticket's invite is malformed")?,
            ),
            _ => return Err("the ticket is malformed"),
        };
        if !r.0.is_empty() {
            return Err("the ticket has trailing bytes");
        }
        Ok(SessionTicket {
            session,
            peers,
            invite,
        })
    }

    /// Parses a ticket string and checks its invite (signature, session, expiry against
    /// `now_unix_ms`). Every failure is a one-line error saying what is wrong.
    pub fn parse(s: &str, now_unix_ms: u64) -> Result<SessionTicket> {
        let s = s.trim();
        if !s.starts_with(<SessionTicket as Ticket>::KIND) {
            bail!("not a theta session ticket (it should start with \"theta\")");
        }
        let t = <SessionTicket as Ticket>::decode_string(s).map_err(|e| match e {
            ParseError::Verify { message, .. } => anyhow!("invalid ticket: {message}"),
            ParseError::Encoding { .. } => {
                anyhow!("invalid ticket: it is not valid base32 (was it copied whole?)")
            }
            other => anyhow!("invalid ticket: {other}"),
        })?;
        if let Some(inv) = &t.invite {
            inv.verify()
                .map_err(|e| anyhow!("invalid ticket: its invite does not verify ({e})"))?;
            if inv.capability.session != t.session {
                bail!("invalid ticket: its invite is for another session");
            }
            if inv.check_expiry(now_unix_ms).is_err() {
                bail!(
                    "the ticket's invite expired {} s ago; ask for a new ticket",
                    (now_unix_ms - inv.capability.expires_unix_ms) / 1000
                );
            }
        }
        Ok(t)
    }

    /// The ticket string.
    pub fn to_string_form(&self) -> String {
        self.encode_string()
    }
}

impl Ticket for SessionTicket {
    const KIND: &'static str = "theta";

    fn encode_bytes(&self) -> Vec<u8> {
        self.to_bytes()
    }

    fn decode_bytes(bytes: &[u8]) -> Result<Self, ParseError> {
        SessionTicket::from_bytes(bytes).map_err(ParseError::verification_failed)
    }
}

#[cfg(test)]
mod tests {
    use theta_crdt::ids::Role;
    use theta_crdt::invite::Capability;
    use theta_crdt::sign::Keypair;

    use super::*;

    fn ticket(expires: u64) -> SessionTicket {
        let admin = Keypair::from_secret([1; 32]);
        let session = CommandId([5; 32]);
        let id = iroh::SecretKey::from_bytes(&[1; 32]).public();
        SessionTicket {
            session,
            peers: vec![
                EndpointAddr::new(id)
                    .with_ip_addr("127.0.0.1:4433".parse().unwrap())
                    .with_ip_addr("[::1]:4434".parse().unwrap())
                    .with_relay_url("https://relay.example.invalid./".parse().unwrap()),
            ],
            invite: Some(
                Capability {
                    session,
                    role: Role::Editor,
                    expires_unix_ms: expires,
                    invitee: None,
                    nonce: 7,
                }
                .sign(&admin),
            ),
        }
    }

    #[test]
    fn round_trips() {
        let t = ticket(2_000);
        let s = t.to_string_form();
        assert!(s.starts_with("theta"));
        assert_eq!(SessionTicket::parse(&s, 1_000).unwrap(), t);
    }

    #[test]
    fn malformed_truncated_and_expired_are_clear_errors() {
        let s = ticket(2_000).to_string_form();
        let e = SessionTicket::parse(&s, 5_000).unwrap_err().to_string();
        assert!(e.contains("expired"), "{e}");
        let e = SessionTicket::parse("hello", 0).unwrap_err().to_string();
        assert!(e.contains("not a theta session ticket"), "{e}");
        let e = SessionTicket::parse(&s[..s.len() - 20], 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated") || e.contains("base32"), "{e}");
        let e = SessionTicket::parse(&format!("{s}!!"), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("base32"), "{e}");
        // Every truncation is an error, never a panic.
        for cut in 5..s.len() {
            assert!(SessionTicket::parse(&s[..cut], 0).is_err(), "cut at {cut}");
        }
        // A tampered invite does not verify.
        let mut t = ticket(2_000);
        if let Some(i) = &mut t.invite {
            i.capability.role = Role::Admin;
        }
        let e = SessionTicket::parse(&t.to_string_form(), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not verify"), "{e}");
    }
}
