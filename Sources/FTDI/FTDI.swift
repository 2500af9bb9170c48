import CFTDI
