mod content;
mod delivery;
mod helpers;
mod registration;
mod send;
mod webhook;
