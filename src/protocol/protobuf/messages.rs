//! The prost types of `realtime.proto` and `api.proto` beside this file, written by hand so the
//! build needs no `protoc`: each struct is one message there, each `tag` its field number.

use std::collections::HashMap;

/// `nakama.realtime.Envelope`: a `cid` and at most one message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    #[prost(string, tag = "1")]
    pub cid: String,
    #[prost(oneof = "envelope::Message", tags = "11, 23, 24, 32, 33")]
    pub message: Option<envelope::Message>,
}

pub mod envelope {
    /// The envelope's `oneof message`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Message {
        #[prost(message, tag = "11")]
        Error(super::Error),
        #[prost(message, tag = "23")]
        Notifications(super::Notifications),
        #[prost(message, tag = "24")]
        Rpc(super::Rpc),
        #[prost(message, tag = "32")]
        Ping(super::Ping),
        #[prost(message, tag = "33")]
        Pong(super::Pong),
    }
}

/// `nakama.realtime.Error`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Error {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(map = "string, string", tag = "3")]
    pub context: HashMap<String, String>,
}

/// `nakama.realtime.Notifications`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Notifications {
    #[prost(message, repeated, tag = "1")]
    pub notifications: Vec<Notification>,
}

/// `nakama.api.Notification`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Notification {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub subject: String,
    #[prost(string, tag = "3")]
    pub content: String,
    #[prost(int32, tag = "4")]
    pub code: i32,
    #[prost(string, tag = "5")]
    pub sender_id: String,
    #[prost(message, optional, tag = "6")]
    pub create_time: Option<prost_types::Timestamp>,
    #[prost(bool, tag = "7")]
    pub persistent: bool,
}

/// `nakama.api.Rpc`: the request and its answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Rpc {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub payload: String,
    #[prost(string, tag = "3")]
    pub http_key: String,
}

/// `nakama.realtime.Ping`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ping {}

/// `nakama.realtime.Pong`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Pong {}
