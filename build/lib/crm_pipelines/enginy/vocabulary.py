"""Word lists the generator draws from: real-world spellings with accents, apostrophes and
hyphens, because those are exactly what breaks naive matching."""

FIRST_NAMES = [
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Anthony",
    "Margaret", "Mark", "Sandra", "Paul", "Ashley", "Steven", "Emily", "Andrew", "Donna",
    "Joshua", "Michelle", "Kevin", "Carol", "Brian", "Amanda", "George", "Melissa", "Jon",
    "Jonathan", "Oliver", "Amelia", "Harry", "Isla", "Jack", "Ava", "Noah", "Mia", "Leo",
    "José", "María", "Jordi", "Núria", "Sofía", "Lucía", "Martín", "Álvaro", "Inés", "Iñaki",
    "Adrián", "Raúl", "Begoña", "Andrés", "Ramón", "Mónica", "Héctor", "Jesús", "Óscar",
    "François", "Hélène", "Zoë", "Chloé", "Léa", "Théo", "Clément", "Céline", "Jérôme", "Anaïs",
    "Jürgen", "Günter", "Jörg", "Björn", "Sören", "Dörte", "Lukas", "Mia", "Felix", "Anna",
    "Søren", "Åsa", "Lars", "Ingrid", "Mikael", "Łukasz", "Paweł", "Zoltán", "Tomás",
    "Giulio", "Adham", "Francesca", "Luca", "Giulia", "Niccolò", "Matteo", "Chiara",
    "Jean-Luc", "Anne-Marie", "Mary-Jane", "Hans-Peter", "Ana Isabel",
]

LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee", "Thompson", "White", "Harris",
    "Clark", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Hill",
    "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Roberts", "Turner", "Phillips",
    "Campbell", "Parker", "Evans", "Edwards", "Collins", "Stewart", "Morris", "Murphy", "Cook",
    "O'Brien", "O'Connor", "O'Neill", "McDonald", "MacLeod", "D'Angelo", "Van der Berg",
    "García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez",
    "Gómez", "Jiménez", "Muñoz", "Álvarez", "Núñez", "Ibáñez", "Castaño", "Peña", "Casas",
    "García-López", "Martín-Ruiz", "Elman", "Gargano",
    "Müller", "Schäfer", "Schröder", "Köhler", "Weiß", "Hoffmann", "Krüger", "Bäcker", "Jäger",
    "Dubois", "Lefèvre", "Bérard", "Girard", "Moreau", "Rousseau", "Bélanger", "Gauthier",
    "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
    "Nielsen", "Jørgensen", "Sørensen", "Åberg", "Lindqvist", "Kowalski", "Nowak", "Wiśniewski",
    "Novák", "Dvořák", "Horváth", "Szabó", "Kovač", "Papadopoulos",
]

JOB_TITLES = [
    "Head of Sales", "VP Sales", "Sales Director", "Account Executive", "SDR", "BDR Manager",
    "CEO", "CTO", "COO", "CFO", "Founder", "Co-Founder", "Head of Marketing", "Marketing Manager",
    "Growth Lead", "Head of Talent", "HR Director", "Recruiter", "Operations Manager",
    "Software Engineer", "Engineering Manager", "Product Manager", "Customer Success Manager",
    "RevOps Manager", "Procurement Lead", "IT Director",
]

INDUSTRIES = [
    "Software", "Logistics", "Retail", "Manufacturing", "Healthcare", "Finance", "Consulting",
    "Education", "Energy", "Hospitality", "Media", "Real Estate", "Telecommunications",
]

# Syllables build brand names that are unique by construction (index → syllables).
SYLLABLES = [
    "zen", "tor", "ka", "li", "vex", "mo", "ra", "nu", "bel", "qui", "dor", "sa", "fi", "lum",
    "tek", "no", "va", "ri", "xo", "pla", "sto", "mer", "gal", "cor", "ta", "ne", "lo", "bri",
    "ven", "dal", "ko", "su", "mi", "ron", "ze", "pa", "lin", "tri", "gra", "vo", "ha", "ju",
    "né", "lú", "bö", "çe", "ñe", "rø",
]

BUSINESS_WORDS = ["", "", "", "Logistics", "Labs", "Systems", "Group", "Partners", "Digital",
                  "Solutions", "Capital", "Foods", "& Co", "and Sons", "Consulting", "Analytics"]

# Country → (top-level domain, LinkedIn country subdomain, legal suffixes as written there).
COUNTRIES = {
    "US": (".com", "www", ["Inc.", "LLC", "Corp.", "Corporation"]),
    "GB": (".co.uk", "uk", ["Ltd", "Limited", "PLC"]),
    "DE": (".de", "de", ["GmbH", "AG", "GmbH & Co. KG"]),
    "ES": (".es", "es", ["S.L.", "S.A.", "SLU"]),
    "FR": (".fr", "fr", ["SARL", "SAS", "S.A."]),
    "NL": (".nl", "nl", ["B.V.", "N.V."]),
    "IT": (".it", "it", ["S.p.A.", "S.r.l."]),
    "AU": (".com.au", "au", ["Pty Ltd"]),
}

# Other ways people write the same legal suffix.
SUFFIX_SPELLINGS = {
    "Inc.": ["Inc", "INC", "Incorporated"], "LLC": ["L.L.C.", "Llc"], "Corp.": ["Corp", "Corporation"],
    "Corporation": ["Corp."], "Ltd": ["Ltd.", "Limited", "LTD"], "Limited": ["Ltd"], "PLC": ["plc", "P.L.C."],
    "GmbH": ["Gmbh", "GMBH"], "AG": ["A.G."], "GmbH & Co. KG": ["GmbH & Co KG"],
    "S.L.": ["SL", "S.L", "Sociedad Limitada"], "S.A.": ["SA", "S.A"], "SLU": ["S.L.U."],
    "SARL": ["S.A.R.L.", "Sarl"], "SAS": ["S.A.S."], "B.V.": ["BV", "B.V"], "N.V.": ["NV"],
    "S.p.A.": ["SpA", "S.P.A."], "S.r.l.": ["Srl", "S.R.L."], "Pty Ltd": ["Pty. Ltd.", "PTY LTD"],
}

CAMPAIGN_THEMES = ["UK Hiring", "Italian SDR", "DACH Expansion", "Spain Outbound", "Q3 Webinar",
                   "Fintech Leaders", "Retail Push", "Partner Program", "Nordics Pilot",
                   "Event Follow-up", "Product Launch", "Win-back"]

CONVERSATION_TAGS = [
    ("Contacted", "NEUTRAL"), ("Positive", "POSITIVE"), ("Meeting Booked", "POSITIVE"),
    ("Interested", "POSITIVE"), ("Not Now", "NEUTRAL"), ("Referral", "NEUTRAL"),
    ("Not Interested", "NEGATIVE"), ("Unsubscribe", "NEGATIVE"), ("Wrong Person", "NEGATIVE"),
]

EMAIL_SUBJECTS = ["Quick question about {company}", "{first}, worth a chat?",
                  "Ideas for {company}'s pipeline", "Following up", "Last note from me"]
