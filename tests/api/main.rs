mod content;
mod delivery;
mod helpers;
mod privacy;
mod registration;
mod send;
mod webhook;
