#!/bin/sh
# the front end asks the back end by its definition name, over the project network
echo "Content-Type: text/plain"
echo
wget -qO- http://webapp-api:8080/
wget -qO- http://webapp-api:8080/data/version.txt
