# Shortcuts for those who have make; dev.py does the work and needs only Python.
.PHONY: serve test install
serve:
	python3 dev.py serve
test:
	python3 dev.py test
install:
	python3 dev.py install
