//! yorisoi: a LINE chatbot that accompanies families from pregnancy to the child's 3rd birthday.
#![forbid(unsafe_code)]

pub mod broadcast;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod content;
pub mod conversation;
pub mod delivery;
pub mod domain;
pub mod health;
pub mod http;
pub mod line;
pub mod line_double;
pub mod processor;
pub mod richmenu;
pub mod sandbox;
pub mod schedule;
pub mod send;
pub mod staff;
pub mod startup;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod webhook;
