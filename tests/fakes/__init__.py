"""Local stand-ins for the outside world, faked at the protocol boundary: Twilio's HTTP API and SMTP."""
