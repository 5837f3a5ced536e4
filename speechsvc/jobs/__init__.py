"""The job vocabulary every floor shares: states, the request, the records the store hands back. Imports
nothing above the decoder, the audio and the result types."""
