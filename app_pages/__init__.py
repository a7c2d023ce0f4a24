"""The app's pages and sidebar: Streamlit wiring over chatbot/ and history/, which hold the logic."""
