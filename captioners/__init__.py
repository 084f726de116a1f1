"""Vision-language recaptioners (dense recaptions arrive with the recaption issue)."""
