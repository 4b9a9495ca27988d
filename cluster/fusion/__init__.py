"""Cross-camera fusion: one person's sightings on several cameras become one alert to adjudicate."""
